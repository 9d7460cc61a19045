#include "runtime/http/route_table.hpp"

#include <boost/test/unit_test.hpp>

using namespace wharf::runtime;

namespace {

route_table make_router(std::vector<std::string>* hits) {
  route_table r;
  auto handler = [hits](std::string name) {
    return [hits, name](http_request& req) -> kj::Promise<http_response> {
      std::string p;
      for (auto& x : req.params)
        p += "/" + x;
      hits->push_back(name + p);
      return http_response{};
    };
  };
  r.add("POST", "/v1/items", handler("create"));
  r.add("GET", "/v1/items/{}", handler("status"));
  r.add("DELETE", "/v1/items/{}", handler("cancel"));
  r.add("GET", "/v1/items/{}/rows", handler("rows"));
  return r;
}

http_request req(std::string method, std::string path, std::string query = "") {
  http_request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.query = std::move(query);
  return r;
}

} // namespace

BOOST_AUTO_TEST_SUITE(route_table_suite)

BOOST_AUTO_TEST_CASE(a_route_matches_its_method_and_fills_its_parameters) {
  std::vector<std::string> hits;
  auto r = make_router(&hits);
  auto a = req("GET", "/v1/items/n1-ab/rows");
  auto m = r.find(a);
  BOOST_REQUIRE(m.handler);
  BOOST_TEST((a.params == std::vector<std::string>{"n1-ab"}));
  auto b = req("DELETE", "/v1/items/x");
  BOOST_REQUIRE(r.find(b).handler);
  auto c = req("HEAD", "/v1/items/x");
  BOOST_TEST(r.find(c).handler != nullptr); // HEAD is served as GET
}

BOOST_AUTO_TEST_CASE(an_unknown_path_is_404_and_a_wrong_method_is_405_with_allow) {
  std::vector<std::string> hits;
  auto r = make_router(&hits);
  auto a = req("POST", "/v1/nothing");
  auto m = r.find(a);
  BOOST_TEST(!m.handler);
  BOOST_TEST(m.error.status == 404u);
  BOOST_TEST(m.error.body.find("\"error_code\":\"NOT_FOUND\"") != std::string::npos, m.error.body);
  auto b = req("PUT", "/v1/items/x");
  m = r.find(b);
  BOOST_TEST(m.error.status == 405u);
  BOOST_REQUIRE(m.error.headers.size() == 1u);
  BOOST_TEST(m.error.headers[0].first == "Allow");
  BOOST_TEST(m.error.headers[0].second == "DELETE, GET, HEAD");
  auto c = req("GET", "/v1/items"); // only POST there
  BOOST_TEST(r.find(c).error.status == 405u);
  auto d = req("GET", "/v1/items/"); // an empty id is no id
  BOOST_TEST(r.find(d).error.status == 405u);
}

BOOST_AUTO_TEST_CASE(query_values_are_found_by_key) {
  auto r = req("GET", "/x", "offset=10&limit=&flag");
  BOOST_TEST(r.query_value("offset") == "10");
  BOOST_TEST(r.query_value("limit") == "");
  BOOST_TEST(r.has_query("limit"));
  BOOST_TEST(r.has_query("flag"));
  BOOST_TEST(!r.has_query("off"));
  BOOST_TEST(r.query_value("missing") == "");
}

BOOST_AUTO_TEST_CASE(error_bodies_are_escaped_json) {
  auto e = http_response::error(400, "INVALID_ARGUMENT", "a \"quoted\"\nline\x01");
  BOOST_TEST(e.body == "{\"error_code\":\"INVALID_ARGUMENT\",\"error_message\":\"a \\\"quoted\\\"\\nline\\u0001\"}\n");
}

BOOST_AUTO_TEST_SUITE_END()
