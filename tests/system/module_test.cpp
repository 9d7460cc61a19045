// The service-module boundary, end to end: `echo_node` is a wharf-node that links only the
// test module (tests/module/echo_module.hpp), which uses every hook: config section, message
// handling child (by role), column family, capability, HTTP routes, listener with drain,
// console command and metrics. Nothing in runtime/ names it; these cases prove each hook
// works through the boundary alone, on a real node process over loopback.
#include <csignal>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include <boost/test/unit_test.hpp>

#include "runtime/console/console.hpp"
#include "runtime/rpc/admin_client.hpp"
#include "runtime/rpc/rpc_client.hpp"
#include "tests/module/echo.capnp.h"
#include "tests/module/echo_module.hpp"
#include "tests/support/expect.hpp"
#include "tests/support/node_process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace wharf;
using namespace std::chrono_literals;
using test::eventually;
using test::node_process;

namespace {

struct echo_fixture {
  test::temp_dir dir{"wharf-module"};
  uint16_t echo_port = test::free_port();
  std::unique_ptr<node_process> node;

  std::string write_config(const std::string& extra = "") {
    auto path = dir.str() + "/node.toml";
    std::ofstream f{path};
    f << "[echo]\ngreeting = \"hi\"\nport = " << echo_port << "\n" << extra;
    return path;
  }

  void start(const std::string& roles = "echo", const std::vector<std::string>& flags = {}) {
    node = std::make_unique<node_process>("n1", dir.str() + "/data", dir.str(), 0);
    node->binary(WHARF_ECHO_NODE_BIN);
    std::vector<std::string> args{"--config", write_config(), "--roles", roles};
    args.insert(args.end(), flags.begin(), flags.end());
    node->start(args);
    BOOST_REQUIRE_MESSAGE(eventually([&] { return test::http_get(node->port().http, "/health") == 200; }),
                          "phase: starting the echo node\n" << node->log_tail());
  }

  caf::expected<std::string> say(const std::string& text) {
    runtime::rpc_client client{"127.0.0.1", node->port().rpc, 10s};
    return client.call<std::string>([text](api::Node::Client n) {
      auto req = n.serviceRequest();
      req.setName("echo");
      auto say = req.send().getService().castAs<echo::Echo>().sayRequest();
      say.setText(text);
      return say.send().then([](auto r) { return std::string(r.getReply().cStr()); });
    });
  }

  std::string tree() {
    runtime::admin_client client{"127.0.0.1", node->port().rpc, 10s};
    auto r = client.call({protocols::admin_command::tree, "", "", "", ""});
    std::string out;
    if (r)
      for (auto& e : r->actors)
        out += e.path + "\n";
    return out;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(service_module, echo_fixture)

BOOST_AUTO_TEST_CASE(the_capability_routes_listener_console_and_metrics_plug_in) {
  start();
  // Capability, through Node.service("echo").
  auto r = say("there");
  BOOST_REQUIRE_MESSAGE(r, "phase: Echo.say over RPC: " << test::why(r) << "\n" << node->log_tail());
  BOOST_TEST(*r == "hi there");
  // HTTP routes, with 404 and 405 from the route table.
  std::string body;
  BOOST_TEST(test::http_get(node->port().http, "/v1/echo?text=a", &body) == 200, body);
  BOOST_TEST(body == "{\"reply\":\"hi a\"}\n");
  BOOST_TEST(test::http_request(node->port().http, "POST", "/v1/echo", "b", &body) == 200, body);
  BOOST_TEST(body == "{\"reply\":\"hi b\"}\n");
  BOOST_TEST(test::http_request(node->port().http, "DELETE", "/v1/echo", "", &body) == 405, body);
  BOOST_TEST(body.find("\"error_code\":\"INVALID_ARGUMENT\"") != std::string::npos, body);
  BOOST_TEST(test::http_request(node->port().http, "POST", "/v1/nope", "x", &body) == 404, body);
  BOOST_TEST(body.find("\"error_code\":\"NOT_FOUND\"") != std::string::npos, body);
  // The module's own TCP listener.
  test::tcp_client c{echo_port};
  BOOST_REQUIRE_MESSAGE(c.connected(), "phase: connecting to the echo listener on " << echo_port);
  c.send("x\ny\n");
  auto got = c.read_until("hi y\n");
  BOOST_TEST(got == "hi x\nhi y\n");
  // Metrics: the module's counter and the listener's gauges.
  BOOST_TEST(test::http_get(node->port().http, "/metrics", &body) == 200);
  BOOST_TEST(body.find("wharf_echo_calls_total{node=\"n1\"} 5") != std::string::npos, body);
  BOOST_TEST(body.find("wharf_listener_connections{node=\"n1\",listener=\"echo\"} 1")
               != std::string::npos, body);
  BOOST_TEST(body.find("wharf_listener_accepted_total{node=\"n1\",listener=\"echo\"} 1")
               != std::string::npos, body);
  // Console command, with help.
  test::echo_module module;
  runtime::rpc_client client{"127.0.0.1", node->port().rpc, 10s};
  runtime::console con{client, {&module}};
  auto res = con.run("say yo");
  BOOST_TEST(res.exit_code == 0, res.error);
  BOOST_TEST(res.output == "hi yo\n");
  BOOST_TEST(con.help().find("say TEXT") != std::string::npos, con.help());
  BOOST_TEST(con.run("say").exit_code == 2);
  auto completions = con.complete("sa");
  BOOST_TEST((completions == std::vector<std::string>{"say"}));
  // The child, under services/ on a node with its role.
  BOOST_TEST(tree().find("services/echo\n") != std::string::npos, tree());
  // A name no module serves.
  auto none = client.call<std::string>([](api::Node::Client n) {
    auto req = n.serviceRequest();
    req.setName("nothing");
    return req.send().getService().castAs<echo::Echo>().lastRequest().send().then(
      [](auto resp) { return std::string(resp.getText().cStr()); });
  });
  BOOST_REQUIRE(!none);
  BOOST_TEST(test::why(none).find("this node runs no module") != std::string::npos, test::why(none));
}

BOOST_AUTO_TEST_CASE(its_state_lives_in_its_column_family_across_a_restart) {
  start("echo", {"--log-format", "json"});
  BOOST_REQUIRE(say("keep me"));
  node->signal(SIGTERM);
  BOOST_REQUIRE_EQUAL(node->wait(), 0);
  node->start({"--config", write_config(), "--roles", "echo", "--log-format", "json"});
  BOOST_REQUIRE(eventually([&] { return test::http_get(node->port().http, "/health") == 200; }));
  runtime::rpc_client client{"127.0.0.1", node->port().rpc, 10s};
  auto last = client.call<std::string>([](api::Node::Client n) {
    auto req = n.serviceRequest();
    req.setName("echo");
    return req.send().getService().castAs<echo::Echo>().lastRequest().send().then(
      [](auto resp) { return std::string(resp.getText().cStr()); });
  });
  BOOST_REQUIRE_MESSAGE(last, test::why(last));
  BOOST_TEST(*last == "keep me");
  // --log-format json: every line one JSON object with the node's fields.
  std::istringstream lines{node->log()};
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    BOOST_REQUIRE_MESSAGE(j.is_object(), "not a JSON object: " << line);
    BOOST_TEST(j.value("node", "") == "n1", line);
    for (auto key : {"ts", "level", "actor", "trace", "msg"})
      BOOST_TEST(j.contains(key), key << " missing in " << line);
    ++n;
  }
  BOOST_TEST(n > 4u);
}

BOOST_AUTO_TEST_CASE(a_node_without_the_role_does_not_run_its_child) {
  start("worker");
  BOOST_TEST(tree().find("services/echo") == std::string::npos, tree());
  auto r = say("anyone?");
  BOOST_TEST(!r);
  BOOST_TEST(node->log().find("module echo: not running echo here (roles echo)") != std::string::npos,
             node->log_tail());
}

BOOST_AUTO_TEST_CASE(draining_tells_open_connections_and_waits_for_them) {
  start();
  test::tcp_client c{echo_port};
  c.send("a\n");
  BOOST_REQUIRE(c.read_until("hi a\n").find("hi a\n") != std::string::npos);
  node->signal(SIGTERM);
  auto got = c.read_until("bye\n");
  BOOST_TEST(got == "hi a\nbye\n");
  c.read_until("never", 10s);
  BOOST_TEST(c.closed());
  BOOST_TEST(node->wait() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(service_module_config)

BOOST_AUTO_TEST_CASE(its_section_is_checked_dumped_and_documented) {
  test::temp_dir dir;
  auto path = dir.str() + "/node.toml";
  {
    std::ofstream f{path};
    f << "[echo]\ngretting = \"x\"\n";
  }
  std::string out;
  auto rc = test::run_command({WHARF_ECHO_NODE_BIN, "--config", path}, &out);
  BOOST_TEST(rc == 2);
  BOOST_TEST(out == "wharf-node: bad_config: " + path + ": echo.gretting: unknown key\n");
  {
    std::ofstream f{path};
    f << "[echo]\ngreeting = \"\"\n";
  }
  rc = test::run_command({WHARF_ECHO_NODE_BIN, "--config", path}, &out);
  BOOST_TEST(rc == 2);
  BOOST_TEST(out.find("echo.greeting: must be 1..100 characters") != std::string::npos, out);
  {
    std::ofstream f{path};
    f << "[echo]\ngreeting = \"salut\"\n";
  }
  rc = test::run_command({WHARF_ECHO_NODE_BIN, "--config", path, "--dump-config"}, &out);
  BOOST_TEST(rc == 0);
  BOOST_TEST(out.find("[echo]\ngreeting = \"salut\"\nport = 0\n") != std::string::npos, out);
  rc = test::run_command({WHARF_ECHO_NODE_BIN, "--help"}, &out);
  BOOST_TEST(rc == 0);
  BOOST_TEST(out.find("[echo]  the test module (tests/module)") != std::string::npos, out);
  BOOST_TEST(out.find("greeting = \"hello\"") != std::string::npos, out);
}

BOOST_AUTO_TEST_SUITE_END()
