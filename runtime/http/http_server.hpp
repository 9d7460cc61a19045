#pragma once
/// The node's HTTP server on the KJ loop: `GET /health` and `GET /metrics` of its own, and
/// the routes the modules added to `routes()`. Checks every request before a handler sees it:
/// a connection whose first bytes are not an HTTP request line gets 400 and is closed at once
/// (not held until a header timeout); a Content-Length that does not parse gets 400; a body
/// over `max_body` gets 413 naming the limit (without reading it); a body that ends before
/// its Content-Length gets 400. Every error body is JSON with `error_code`.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <kj/async-io.h>

#include "runtime/http/route_table.hpp"

namespace wharf::runtime {

class node_metrics;

class http_server {
public:
  /// `serving` is what /health tells (200 while true, 503 otherwise).
  http_server(kj::Timer& timer, std::string node_name, std::shared_ptr<node_metrics> metrics,
              size_t max_body);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Routes; add before `listen`.
  route_table& routes() noexcept;

  /// Serves connections from `receiver` until the promise is cancelled.
  kj::Promise<void> listen(kj::ConnectionReceiver& receiver);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace wharf::runtime
