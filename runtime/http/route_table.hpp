#pragma once
/// The route table of the node's HTTP port: modules add routes (method + path pattern), the
/// node answers everything else. A path no route matches is 404; a path that matches with
/// another method is 405 with `Allow`; every error body is JSON with `error_code` and
/// `error_message`. Handlers run on the KJ loop thread and must not block it.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <kj/async.h>

namespace wharf::runtime {

/// One request, its body read in full (at most the node's body limit).
struct http_request {
  std::string method;              ///< "GET", "POST", ... (HEAD is served as GET)
  std::string path;                ///< without the query, e.g. "/v1/items/n1-ab12/rows"
  std::string query;               ///< after '?', undecoded; "" when none
  std::vector<std::string> params; ///< the segments matched by `{}` in the route, in order
  std::string body;

  /// The value of `key` in the query ("" when absent; no percent-decoding).
  std::string query_value(std::string_view key) const;
  /// Whether the query names `key`.
  bool has_query(std::string_view key) const;
};

/// An answer.
struct http_response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers; ///< extra, e.g. Retry-After

  /// A JSON body (already serialized) with a trailing newline.
  static http_response json(unsigned status, std::string json_text);
  /// `{"error_code": code, "error_message": message}`.
  static http_response error(unsigned status, std::string_view code, std::string_view message);
  /// The reason phrase of a status ("Not Found").
  static const char* reason(unsigned status) noexcept;
};

using http_handler = std::function<kj::Promise<http_response>(http_request&)>;

class route_table {
public:
  /// Adds a route. `pattern` is a path whose `{}` segments match any one non-empty segment
  /// ("/v1/items/{}/rows"). A later route for the same method and pattern replaces it.
  void add(std::string method, std::string pattern, http_handler handler);

  /// What a request resolves to: a handler (with `params` filled in), or the error answer.
  struct match {
    const http_handler* handler = nullptr;
    http_response error; ///< when no handler: 404 or 405
  };
  match find(http_request& req) const;

  /// The patterns, for error messages and docs.
  std::vector<std::string> paths() const;

private:
  struct route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    http_handler handler;
  };
  static bool matches(const route& r, const std::vector<std::string>& segs,
                      std::vector<std::string>* params);
  std::vector<route> routes_;
};

/// JSON string escaping (quotes, backslash, control characters), without the quotes.
std::string json_escape(std::string_view s);

} // namespace wharf::runtime
