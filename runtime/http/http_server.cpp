#include "runtime/http/http_server.hpp"

#include <cctype>
#include <cstring>

#include <kj/compat/http.h>
#include <kj/debug.h>
#include <spdlog/spdlog.h>

#include "runtime/core/metrics.hpp"
#include "runtime/rpc/accept_loop.hpp"

namespace wharf::runtime {

namespace {

// A connection whose first bytes were read to check them: serves those bytes first.
class prefixed_stream final : public kj::AsyncIoStream {
public:
  prefixed_stream(kj::Own<kj::AsyncIoStream> inner, kj::Array<kj::byte> prefix)
    : inner_(kj::mv(inner)), prefix_(kj::mv(prefix)) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override {
    if (at_ < prefix_.size()) {
      auto n = std::min(max_bytes, prefix_.size() - at_);
      std::memcpy(buffer, prefix_.begin() + at_, n);
      at_ += n;
      if (n >= min_bytes)
        return n;
      return inner_->tryRead(static_cast<kj::byte*>(buffer) + n, min_bytes - n, max_bytes - n)
        .then([n](size_t more) { return n + more; });
    }
    return inner_->tryRead(buffer, min_bytes, max_bytes);
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    return inner_->write(buffer, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_->whenWriteDisconnected(); }
  void shutdownWrite() override { inner_->shutdownWrite(); }
  void abortRead() override { inner_->abortRead(); }
  void getsockopt(int level, int option, void* value, uint* length) override {
    inner_->getsockopt(level, option, value, length);
  }
  void setsockopt(int level, int option, const void* value, uint length) override {
    inner_->setsockopt(level, option, value, length);
  }
  void getsockname(struct sockaddr* addr, uint* length) override {
    inner_->getsockname(addr, length);
  }
  void getpeername(struct sockaddr* addr, uint* length) override {
    inner_->getpeername(addr, length);
  }

private:
  kj::Own<kj::AsyncIoStream> inner_;
  kj::Array<kj::byte> prefix_;
  size_t at_ = 0;
};

// Whether bytes can start an HTTP/1 request line: a method token of capital letters, then a
// space. Only letters so far (no space yet) is not decided against.
bool looks_like_http(const kj::byte* p, size_t n) {
  constexpr size_t max_method = 16;
  size_t i = 0;
  while (i < n && i <= max_method && std::isupper(p[i]))
    ++i;
  if (i == n)
    return i <= max_method;
  return i > 0 && p[i] == ' ';
}

// Whether the headers in the first bytes of a request carry a Content-Length that is not a
// plain number (negative, empty, garbage): such a request cannot be read through, so it is
// refused before kj's parser would wait for a body of unknown length.
bool bad_length_header(const kj::byte* p, size_t n) {
  std::string_view text(reinterpret_cast<const char*>(p), n);
  text = text.substr(0, text.find("\r\n\r\n")); // the headers only, not the body
  constexpr std::string_view name = "content-length:";
  for (size_t at = text.find('\n'); at != std::string_view::npos; at = text.find('\n', at + 1)) {
    auto line = text.substr(at + 1);
    if (line.size() < name.size())
      return false;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i)
      same = std::tolower(static_cast<unsigned char>(line[i])) == name[i];
    if (!same)
      continue;
    auto end = line.find_first_of("\r\n");
    if (end == std::string_view::npos)
      return false; // the value is not all here yet: kj's parser decides
    auto value = line.substr(name.size(), end - name.size());
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
      value.remove_suffix(1);
    if (value.empty() || value.size() > 18)
      return true;
    for (char c : value)
      if (c < '0' || c > '9')
        return true;
  }
  return false;
}

std::string plain_error(unsigned status, std::string_view code, std::string_view msg) {
  auto r = http_response::error(status, code, msg);
  return "HTTP/1.1 " + std::to_string(status) + " " + http_response::reason(status)
         + "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
         + std::to_string(r.body.size()) + "\r\n\r\n" + r.body;
}

// A Content-Length value: digits only, at most 18 of them.
bool parse_length(kj::StringPtr s, uint64_t& out) {
  if (s.size() == 0 || s.size() > 18)
    return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return false;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

struct body_buffer {
  std::string data;
  size_t max = 0;
  bool over = false;
};

// A client must send its request's first bytes within this (kj's header timeout).
constexpr auto header_timeout = 15 * kj::SECONDS;

// A body that stops arriving for this long is refused (a Content-Length larger than what the
// client sends, with the connection left open).
constexpr auto body_idle = 5 * kj::SECONDS;

// Reads the whole body into `b`, stopping (with `over`) once it passes b->max.
kj::Promise<void> read_body(kj::AsyncInputStream& in, kj::Timer& timer,
                            std::shared_ptr<body_buffer> b) {
  constexpr size_t step = 64 * 1024;
  auto old = b->data.size();
  b->data.resize(old + step);
  auto stalled = timer.afterDelay(body_idle).then([b, old]() -> size_t {
    kj::throwFatalException(kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                                          kj::str("none of the rest arrived within 5 s (", old,
                                                  " bytes arrived)")));
  });
  return in.tryRead(b->data.data() + old, 1, step)
    .exclusiveJoin(kj::mv(stalled))
    .then([&in, &timer, b, old](size_t n) -> kj::Promise<void> {
    b->data.resize(old + n);
    if (n == 0)
      return kj::READY_NOW;
    if (b->data.size() > b->max) {
      b->over = true;
      return kj::READY_NOW;
    }
    return read_body(in, timer, b);
  });
}

} // namespace

struct http_server::impl final : public kj::HttpService, public kj::HttpServerErrorHandler,
                                 public kj::HttpServerCallbacks,
                                 public kj::TaskSet::ErrorHandler {
  kj::Timer& timer;
  std::string node;
  std::shared_ptr<node_metrics> metrics;
  size_t max_body;
  kj::HttpHeaderTable table;
  route_table routes;
  kj::Own<kj::HttpServer> server;
  kj::TaskSet connections{*this};
  // Set around a response that must end its connection (a request we could not read
  // through): kj asks `shouldClose` as it begins the response's headers, on this thread.
  bool close_next = false;

  impl(kj::Timer& t, std::string n, std::shared_ptr<node_metrics> m, size_t max)
    : timer(t), node(std::move(n)), metrics(std::move(m)), max_body(max) {
    kj::HttpServerSettings settings;
    settings.errorHandler = *this;
    settings.callbacks = *this;
    // A client whose large body we answered early (413) may go on sending: read that much
    // of it, so it sees the answer rather than a reset connection.
    settings.canceledUploadGraceBytes = std::min<size_t>(4 * max_body, size_t{64} << 20);
    settings.canceledUploadGracePeriod = 2 * kj::SECONDS;
    server = kj::heap<kj::HttpServer>(timer, table, *this, settings);
    routes.add("GET", "/health", [this](http_request&) -> kj::Promise<http_response> {
      bool ok = metrics->serving.load();
      auto r = http_response::json(ok ? 200 : 503, std::string("{\"status\":\"")
                                                     + (ok ? "serving" : "unavailable")
                                                     + "\",\"node\":\"" + json_escape(node)
                                                     + "\"}");
      return r;
    });
    routes.add("GET", "/metrics", [this](http_request&) -> kj::Promise<http_response> {
      http_response r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = metrics->prometheus(node);
      return r;
    });
  }

  bool shouldClose() override {
    auto c = close_next;
    close_next = false;
    return c;
  }

  // An answer with `Connection: close`: kj 0.9.2 then reads what is left of the body (up
  // to canceledUploadGraceBytes, so the client sees the answer rather than a reset) and ends
  // the connection once the client ends it, or after its pipeline timeout.
  kj::Promise<void> send_and_close(Response& response, const http_response& r) {
    close_next = true;
    auto p = send(response, r); // kj asked shouldClose() while sending the headers
    close_next = false;         // so the flag never reaches another response
    return p;
  }

  void taskFailed(kj::Exception&& e) override {
    spdlog::debug("http: connection ended with an error: {}", e.getDescription().cStr());
  }

  kj::Promise<void> send(Response& response, const http_response& r) {
    kj::HttpHeaders headers(table);
    headers.set(kj::HttpHeaderId::CONTENT_TYPE, kj::str(r.content_type));
    for (auto& [k, v] : r.headers)
      headers.add(kj::str(k), kj::str(v));
    auto out = response.send(r.status, http_response::reason(r.status), headers, r.body.size());
    auto buf = kj::heapString(r.body.data(), r.body.size());
    auto p = out->write(buf.begin(), buf.size());
    return p.attach(kj::mv(out), kj::mv(buf));
  }

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url,
                            const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                            Response& response) override {
    auto req = std::make_shared<http_request>();
    req->method = kj::str(method).cStr();
    std::string u(url.cStr(), url.size());
    auto q = u.find('?');
    req->path = u.substr(0, q);
    if (q != std::string::npos)
      req->query = u.substr(q + 1);
    auto match = routes.find(*req);
    if (!match.handler)
      return send(response, match.error);
    uint64_t length = 0;
    bool has_length = false;
    KJ_IF_MAYBE (cl, headers.get(kj::HttpHeaderId::CONTENT_LENGTH)) {
      if (!parse_length(*cl, length))
        return send_and_close(response,
                              http_response::error(400, "INVALID_ARGUMENT",
                                                   "Content-Length is not a number of bytes"));
      has_length = true;
    }
    if (has_length && length > max_body)
      return send_and_close(response, too_large());
    auto buf = std::make_shared<body_buffer>();
    buf->max = max_body;
    const http_handler* handler = match.handler;
    return read_body(body, timer, buf).then(
      [this, req, buf, handler, &response]() -> kj::Promise<void> {
        if (buf->over)
          return send_and_close(response, too_large());
        req->body = std::move(buf->data);
        return kj::evalNow([&] { return (*handler)(*req); })
          .then([this, &response, req](http_response r) { return send(response, r); },
                [this, &response, req](kj::Exception&& e) {
                  spdlog::error("http: {} {} failed: {}", req->method, req->path,
                                e.getDescription().cStr());
                  return send(response, http_response::error(500, "INTERNAL",
                                                             e.getDescription().cStr()));
                });
      },
      [this, &response](kj::Exception&& e) {
        return send_and_close(response, http_response::error(
                                400, "INVALID_ARGUMENT",
                                std::string("the request body ended early: ")
                                  + e.getDescription().cStr()));
      });
  }

  http_response too_large() const {
    return http_response::error(413, "TOO_LARGE",
                                "request body over " + std::to_string(max_body)
                                  + " bytes (node.http_max_body_bytes)");
  }

  // -- protocol errors (HttpServerErrorHandler) --

  kj::Promise<void> handleClientProtocolError(kj::HttpHeaders::ProtocolError e,
                                              Response& response) override {
    return send(response, http_response::error(400, "INVALID_ARGUMENT",
                                               std::string("malformed HTTP request: ")
                                                 + e.description.cStr()));
  }
  kj::Promise<void> handleApplicationError(kj::Exception e,
                                           kj::Maybe<Response&> response) override {
    KJ_IF_MAYBE (r, response) {
      return send(*r, http_response::error(500, "INTERNAL", e.getDescription().cStr()));
    }
    return kj::READY_NOW;
  }
  kj::Promise<void> handleNoResponse(Response& response) override {
    return send(response, http_response::error(500, "INTERNAL", "no response"));
  }

  // -- connections --

  kj::Promise<void> accept(kj::ConnectionReceiver& receiver) {
    return accept_loop(receiver, timer, "http",
                       [this](kj::Own<kj::AsyncIoStream> s) { connections.add(serve(kj::mv(s))); });
  }

  // Reads the first bytes and checks them before kj's parser (which would wait for a blank
  // line until its header timeout).
  kj::Promise<void> serve(kj::Own<kj::AsyncIoStream> s) {
    auto buf = kj::heapArray<kj::byte>(4096);
    auto& stream = *s;
    auto* data = buf.begin();
    auto size = buf.size();
    // A connection that sends nothing is closed after the header timeout, as kj would.
    auto silent = timer.afterDelay(header_timeout).then([]() -> size_t { return 0; });
    return stream.tryRead(data, 1, size)
      .exclusiveJoin(kj::mv(silent))
      .then([this, s = kj::mv(s), buf = kj::mv(buf)](size_t n) mutable -> kj::Promise<void> {
        if (n == 0)
          return kj::READY_NOW;
        bool http = looks_like_http(buf.begin(), n);
        if (!http || bad_length_header(buf.begin(), n)) {
          auto text = kj::heapString(plain_error(400, "INVALID_ARGUMENT",
                                                 http ? "Content-Length is not a number of bytes"
                                                      : "not an HTTP request"));
          auto& out = *s;
          auto p = out.write(text.begin(), text.size());
          return p.then([&out] { out.shutdownWrite(); }).attach(kj::mv(s), kj::mv(text));
        }
        auto prefix = kj::heapArray<kj::byte>(buf.begin(), n);
        return server->listenHttp(kj::heap<prefixed_stream>(kj::mv(s), kj::mv(prefix)));
      });
  }
};

http_server::http_server(kj::Timer& timer, std::string node_name,
                         std::shared_ptr<node_metrics> metrics, size_t max_body)
  : impl_(std::make_unique<impl>(timer, std::move(node_name), std::move(metrics), max_body)) {}

http_server::~http_server() = default;

route_table& http_server::routes() noexcept {
  return impl_->routes;
}

kj::Promise<void> http_server::listen(kj::ConnectionReceiver& receiver) {
  return impl_->accept(receiver);
}

} // namespace wharf::runtime
