#include "runtime/rpc/rpc_host.hpp"

#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/compat/http.h>
#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <capnp/serialize.h>
#include <nlohmann/json.hpp>

#include "protocols/analytics.capnp.h"
#include "protocols/api.capnp.h"
#include "protocols/capnp_io.hpp"
#include "protocols/capnp_convert.hpp"
#include "runtime/core/metrics.hpp"
#include "runtime/core/types.hpp"
#include "runtime/rpc/report_json.hpp"

namespace wharf::runtime {

namespace {

using protocols::admin_command;
using protocols::admin_reply;
using protocols::admin_request;

constexpr auto bridge_timeout = 30 * kj::SECONDS;

std::string str(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

/// Hands operator commands to the cluster actor and waits (asynchronously) for its reply.
class bridge {
public:
  bridge(caf::actor_system& sys, kj::Timer& timer) : sys_(sys), timer_(timer) {}

  kj::Promise<admin_reply> call(admin_request req) {
    auto cluster = sys_.registry().get<caf::actor>(cluster_name);
    if (!cluster)
      return protocols::make_admin_error("unavailable", "the node is starting or stopping");
    auto paf = kj::newPromiseAndCrossThreadFulfiller<admin_reply>();
    // The fulfiller is thread-safe; if the actor drops the sink unanswered (it crashed), the
    // fulfiller's destructor rejects the promise and the caller gets an exception, not a hang.
    auto holder = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<admin_reply>>>(
      kj::mv(paf.fulfiller));
    reply_sink sink{std::make_shared<std::function<void(admin_reply)>>(
      [holder](admin_reply r) { (*holder)->fulfill(kj::mv(r)); })};
    caf::anon_send(cluster, admin_atom::value, std::move(req), std::move(sink));
    return paf.promise.exclusiveJoin(timer_.afterDelay(bridge_timeout).then([] {
      return protocols::make_admin_error("timeout", "the node did not answer within 30 s");
    }));
  }

private:
  caf::actor_system& sys_;
  kj::Timer& timer_;
};

class admin_impl final : public api::Admin::Server {
public:
  explicit admin_impl(bridge& b) : bridge_(b) {}

  template <class Context>
  kj::Promise<void> run(Context ctx, admin_request req) {
    return bridge_.call(std::move(req)).then([ctx](admin_reply r) mutable {
      protocols::write_admin_reply(ctx.getResults().initReply(), r);
    });
  }

  static admin_request make(admin_command cmd, capnp::Text::Reader node) {
    admin_request r;
    r.command = cmd;
    r.node = str(node);
    return r;
  }

  kj::Promise<void> members(MembersContext ctx) override {
    return run(ctx, make(admin_command::members, ctx.getParams().getNode()));
  }
  kj::Promise<void> tree(TreeContext ctx) override {
    return run(ctx, make(admin_command::tree, ctx.getParams().getNode()));
  }
  kj::Promise<void> actors(ActorsContext ctx) override {
    return run(ctx, make(admin_command::actors, ctx.getParams().getNode()));
  }
  kj::Promise<void> stats(StatsContext ctx) override {
    return run(ctx, make(admin_command::stats, ctx.getParams().getNode()));
  }
  kj::Promise<void> kill(KillContext ctx) override {
    auto r = make(admin_command::kill, ctx.getParams().getNode());
    r.path = str(ctx.getParams().getPath());
    return run(ctx, std::move(r));
  }
  kj::Promise<void> get(GetContext ctx) override {
    auto r = make(admin_command::get, ctx.getParams().getNode());
    r.key = str(ctx.getParams().getKey());
    return run(ctx, std::move(r));
  }
  kj::Promise<void> put(PutContext ctx) override {
    auto r = make(admin_command::put, ctx.getParams().getNode());
    r.key = str(ctx.getParams().getKey());
    r.value = str(ctx.getParams().getValue());
    return run(ctx, std::move(r));
  }

private:
  bridge& bridge_;
};

// Progress updates cross from actor threads into the KJ loop through this queue: actors
// push, the loop drains it in order and forwards each update to the caller's capability.
class progress_feed {
public:
  void push(std::string bytes) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_)
      return;
    items_.push_back(std::move(bytes));
    wake();
  }

  // KJ thread only.
  void close() {
    std::lock_guard<std::mutex> guard{mtx_};
    closed_ = true;
    wake();
  }

  // KJ thread only: the next update, or "" once closed and drained (updates are encoded
  // messages, never empty).
  kj::Promise<std::string> next() {
    std::unique_lock<std::mutex> guard{mtx_};
    if (!items_.empty()) {
      auto x = std::move(items_.front());
      items_.pop_front();
      return x;
    }
    if (closed_)
      return std::string{};
    auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
    waiter_ = kj::mv(paf.fulfiller);
    guard.unlock();
    return paf.promise.then([this] { return next(); });
  }

private:
  void wake() {
    if (waiter_) {
      waiter_->fulfill();
      waiter_ = nullptr;
    }
  }
  std::mutex mtx_;
  std::deque<std::string> items_;
  bool closed_ = false;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> waiter_;
};

using protocols::message_bytes;

// Reads a message our own analytics service encoded (trusted, but still bounded).
template <class T, class F>
auto with_message(const std::string& bytes, F f) {
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), words.size() * sizeof(capnp::word));
  capnp::ReaderOptions opts;
  opts.traversalLimitInWords = words.size() * 4 + 64;
  capnp::FlatArrayMessageReader rd(words, opts);
  return f(rd.getRoot<T>());
}

std::string unavailable_response(const std::string& why) {
  capnp::MallocMessageBuilder mb;
  auto r = mb.initRoot<reports::ReportResponse>();
  r.setStatus(reports::ReportStatus::FAILED);
  r.setErrorCode("UNAVAILABLE");
  r.setErrorMessage(why);
  return message_bytes(mb);
}

std::string unavailable_page(const std::string& why) {
  capnp::MallocMessageBuilder mb;
  auto r = mb.initRoot<reports::ResultPage>();
  r.setErrorCode("UNAVAILABLE");
  r.setError(why);
  return message_bytes(mb);
}

/// Hands app calls (encoded `ApiCall`s) to the node's analytics service. No timeout here:
/// every report carries its own deadline, and a dying service rejects the promise.
class analytics_bridge {
public:
  explicit analytics_bridge(caf::actor_system& sys) : sys_(sys) {}

  // Resolves to the reply bytes, or to "" when the node runs no analytics service.
  kj::Promise<std::string> call(std::string bytes, std::shared_ptr<progress_feed> feed) {
    auto svc = sys_.registry().get<caf::actor>(analytics_name);
    if (!svc)
      return std::string{};
    auto paf = kj::newPromiseAndCrossThreadFulfiller<std::string>();
    auto holder = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<std::string>>>(
      kj::mv(paf.fulfiller));
    bytes_sink reply{std::make_shared<std::function<void(std::string)>>(
      [holder](std::string r) { (*holder)->fulfill(kj::mv(r)); })};
    bytes_sink progress;
    if (feed)
      progress.fn = std::make_shared<std::function<void(std::string)>>(
        [feed](std::string b) { feed->push(std::move(b)); });
    caf::anon_send(svc, api_atom::value, std::move(bytes), std::move(reply), std::move(progress));
    return kj::mv(paf.promise);
  }

private:
  caf::actor_system& sys_;
};

class analytics_impl final : public api::Analytics::Server {
public:
  analytics_impl(analytics_bridge& b, kj::TaskSet& tasks) : bridge_(b), tasks_(tasks) {}

  kj::Promise<void> generateReport(GenerateReportContext ctx) override {
    capnp::MallocMessageBuilder mb;
    mb.initRoot<reports::ApiCall>().setGenerate(ctx.getParams().getRequest());
    return report(ctx, message_bytes(mb), ctx.getParams().getProgress(),
                  ctx.getParams().hasProgress());
  }

  kj::Promise<void> submit(SubmitContext ctx) override {
    capnp::MallocMessageBuilder mb;
    mb.initRoot<reports::ApiCall>().setSubmit(ctx.getParams().getRequest());
    // The answer comes at once; progress keeps flowing until the report ends.
    return report(ctx, message_bytes(mb), ctx.getParams().getProgress(),
                  ctx.getParams().hasProgress(), false);
  }

  kj::Promise<void> status(StatusContext ctx) override {
    capnp::MallocMessageBuilder mb;
    mb.initRoot<reports::ApiCall>().setStatus(ctx.getParams().getReportId());
    return report(ctx, message_bytes(mb), nullptr, false);
  }

  kj::Promise<void> cancel(CancelContext ctx) override {
    capnp::MallocMessageBuilder mb;
    mb.initRoot<reports::ApiCall>().setCancel(ctx.getParams().getReportId());
    return report(ctx, message_bytes(mb), nullptr, false);
  }

  kj::Promise<void> fetchResult(FetchResultContext ctx) override {
    capnp::MallocMessageBuilder mb;
    auto f = mb.initRoot<reports::ApiCall>().initFetch();
    f.setRef(ctx.getParams().getRef());
    f.setOffset(ctx.getParams().getOffset());
    f.setLimit(ctx.getParams().getLimit());
    return bridge_.call(message_bytes(mb), nullptr)
      .then([ctx](std::string bytes) mutable {
        if (bytes.empty())
          bytes = unavailable_page("this node runs no analytics service");
        with_message<reports::ResultPage>(bytes, [&](reports::ResultPage::Reader page) {
          ctx.getResults().setPage(page);
          return 0;
        });
      });
  }

private:
  template <class Context>
  kj::Promise<void> report(Context ctx, std::string call, api::ProgressSink::Client sink,
                           bool has_sink, bool close_on_reply = true) {
    std::shared_ptr<progress_feed> feed;
    if (has_sink) {
      feed = std::make_shared<progress_feed>();
      tasks_.add(forward(feed, sink));
    }
    return bridge_.call(kj::mv(call), feed).then([ctx, feed, close_on_reply](std::string bytes) mutable {
      if (feed && close_on_reply)
        feed->close();
      if (bytes.empty())
        bytes = unavailable_response("this node runs no analytics service");
      with_message<reports::ReportResponse>(bytes, [&](reports::ReportResponse::Reader resp) {
        ctx.getResults().setResponse(resp);
        return 0;
      });
    });
  }

  // Sends each update in order; a caller whose sink fails just stops getting updates.
  static kj::Promise<void> forward(std::shared_ptr<progress_feed> feed,
                                   api::ProgressSink::Client sink) {
    return feed->next().then([feed, sink](std::string bytes) mutable -> kj::Promise<void> {
      if (!bytes.empty()) {
        auto req = sink.progressRequest();
        bool last = with_message<reports::Progress>(bytes, [&](reports::Progress::Reader p) {
          req.setProgress(p);
          auto st = p.getStatus();
          return st != reports::ReportStatus::PENDING && st != reports::ReportStatus::RUNNING;
        });
        if (last) {
          feed->close(); // the report ended: this is the last update
          return req.send().ignoreResult().then([] {}, [](kj::Exception&&) {});
        }
        return req.send().ignoreResult().then(
          [feed, sink]() mutable { return forward(feed, sink); },
          [feed](kj::Exception&&) {
            feed->close();
            return drain(feed);
          });
      }
      return kj::READY_NOW;
    });
  }

  static kj::Promise<void> drain(std::shared_ptr<progress_feed> feed) {
    return feed->next().then([feed](std::string item) -> kj::Promise<void> {
      if (item.empty())
        return kj::READY_NOW;
      return drain(feed);
    });
  }

  analytics_bridge& bridge_;
  kj::TaskSet& tasks_;
};

class node_impl final : public api::Node::Server {
public:
  node_impl(bridge& b, analytics_bridge& ab, kj::TaskSet& tasks)
    : admin_(kj::heap<admin_impl>(b)), analytics_(kj::heap<analytics_impl>(ab, tasks)) {}
  kj::Promise<void> admin(AdminContext ctx) override {
    ctx.getResults().setAdmin(admin_);
    return kj::READY_NOW;
  }
  kj::Promise<void> analytics(AnalyticsContext ctx) override {
    ctx.getResults().setAnalytics(analytics_);
    return kj::READY_NOW;
  }

private:
  api::Admin::Client admin_;
  api::Analytics::Client analytics_;
};

class http_service final : public kj::HttpService {
public:
  http_service(kj::HttpHeaderTable& table, std::shared_ptr<node_metrics> metrics,
               std::string node, analytics_bridge& analytics)
    : table_(table), metrics_(std::move(metrics)), node_(std::move(node)),
      analytics_(analytics) {}

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url, const kj::HttpHeaders&,
                            kj::AsyncInputStream& body, Response& response) override {
    std::string u(url.cStr());
    if (u == "/v1/reports" || u.rfind("/v1/reports/", 0) == 0 || u.rfind("/v1/reports?", 0) == 0)
      return reports(method, u, body, response);
    if (method != kj::HttpMethod::GET && method != kj::HttpMethod::HEAD)
      return send(response, 405, "Method Not Allowed", "text/plain", "only GET is supported\n");
    if (url == "/health") {
      bool ok = metrics_->serving.load();
      auto body = std::string("{\"status\":\"") + (ok ? "serving" : "unavailable")
                  + "\",\"node\":\"" + node_ + "\"}\n";
      return send(response, ok ? 200 : 503, ok ? "OK" : "Service Unavailable",
                  "application/json", body);
    }
    if (url == "/metrics")
      return send(response, 200, "OK", "text/plain; version=0.0.4", metrics_->prometheus(node_));
    return send(response, 404, "Not Found", "text/plain",
                "unknown path; try /health, /metrics or /v1/reports\n");
  }

private:
  static constexpr uint64_t max_body = 1u << 20;

  kj::Promise<void> json_reply(Response& response, unsigned status, const nlohmann::json& j) {
    static const std::map<unsigned, const char*> texts{
      {200, "OK"}, {202, "Accepted"}, {400, "Bad Request"}, {404, "Not Found"},
      {405, "Method Not Allowed"}, {409, "Conflict"}, {413, "Payload Too Large"},
      {500, "Internal Server Error"}, {502, "Bad Gateway"}, {503, "Service Unavailable"},
      {504, "Gateway Timeout"}};
    auto i = texts.find(status);
    return send(response, status, i == texts.end() ? "Error" : i->second, "application/json",
                j.dump() + "\n");
  }

  kj::Promise<void> json_error(Response& response, unsigned status, const char* code,
                               const std::string& msg) {
    return json_reply(response, status, {{"error_code", code}, {"error_message", msg}});
  }

  // POST /v1/reports, GET /v1/reports/{id}, DELETE /v1/reports/{id} (cancel),
  // GET /v1/reports/{id}/rows?offset=&limit=
  kj::Promise<void> reports(kj::HttpMethod method, const std::string& url,
                            kj::AsyncInputStream& body, Response& response) {
    auto path = url.substr(0, url.find('?'));
    auto query = url.find('?') == std::string::npos ? std::string{} : url.substr(url.find('?') + 1);
    if (path == "/v1/reports") {
      if (method != kj::HttpMethod::POST)
        return json_error(response, 405, "INVALID_ARGUMENT", "use POST /v1/reports");
      // readAllText throws once the body passes the limit: that is a 413, not a 500.
      return body.readAllText(max_body + 1)
        .then([](kj::String text) -> kj::Maybe<kj::String> { return kj::mv(text); },
              [](kj::Exception&&) -> kj::Maybe<kj::String> { return nullptr; })
        .then([this, &response](kj::Maybe<kj::String> maybe) {
          KJ_IF_MAYBE (text, maybe) {
            if (text->size() <= max_body) {
              auto call = api_call_from_json(std::string(text->cStr(), text->size()));
              if (!call)
                return json_error(response, 400, "INVALID_ARGUMENT",
                                  describe_short(call.error()));
              return answer_report(response, std::move(*call));
            }
          }
          return json_error(response, 413, "INVALID_ARGUMENT", "request body over 1 MiB");
        });
    }
    auto rest = path.substr(std::string("/v1/reports/").size());
    auto slash = rest.find('/');
    auto id = rest.substr(0, slash);
    if (id.empty())
      return json_error(response, 404, "NOT_FOUND", "no report id in the path");
    if (method == kj::HttpMethod::DELETE && slash == std::string::npos) {
      capnp::MallocMessageBuilder mb;
      mb.initRoot<reports::ApiCall>().setCancel(id);
      return answer_report(response, message_bytes(mb));
    }
    if (method != kj::HttpMethod::GET && method != kj::HttpMethod::HEAD)
      return json_error(response, 405, "INVALID_ARGUMENT",
                        "use GET " + path + (slash == std::string::npos ? " or DELETE" : ""));
    if (slash == std::string::npos) {
      capnp::MallocMessageBuilder mb;
      mb.initRoot<reports::ApiCall>().setStatus(id);
      return answer_report(response, message_bytes(mb));
    }
    if (rest.substr(slash) != "/rows")
      return json_error(response, 404, "NOT_FOUND", "unknown path " + path);
    uint64_t offset = 0, limit = 0;
    size_t at = 0;
    while (at < query.size()) {
      auto amp = query.find('&', at);
      auto kv = query.substr(at, amp == std::string::npos ? std::string::npos : amp - at);
      at = amp == std::string::npos ? query.size() : amp + 1;
      auto eq = kv.find('=');
      auto key = kv.substr(0, eq);
      auto val = eq == std::string::npos ? std::string{} : kv.substr(eq + 1);
      char* end = nullptr;
      auto v = std::strtoull(val.c_str(), &end, 10);
      if ((key == "offset" || key == "limit") && (val.empty() || *end != '\0'))
        return json_error(response, 400, "INVALID_ARGUMENT", key + " must be a number");
      if (key == "offset")
        offset = v;
      else if (key == "limit")
        limit = std::min<uint64_t>(v, 100000);
    }
    capnp::MallocMessageBuilder mb;
    auto f = mb.initRoot<reports::ApiCall>().initFetch();
    f.setRef(id);
    f.setOffset(offset);
    f.setLimit(static_cast<uint32_t>(limit));
    return analytics_.call(message_bytes(mb), nullptr)
      .then([this, &response](std::string bytes) {
        if (!bytes.empty()) {
          return with_message<reports::ResultPage>(bytes, [&](reports::ResultPage::Reader p) {
            auto j = to_json(p); // a malformed page becomes error_code INTERNAL
            auto code = j.value("error_code", std::string{});
            unsigned status = code.empty() ? 200 : code == "NOT_FOUND" ? 404
                                                 : code == "INVALID_ARGUMENT" ? 400 : 500;
            return json_reply(response, status, j);
          });
        }
        return json_error(response, 503, "UNAVAILABLE", "this node runs no analytics service");
      });
  }

  kj::Promise<void> answer_report(Response& response, std::string call) {
    return analytics_.call(std::move(call), nullptr)
      .then([this, &response](std::string bytes) {
        if (!bytes.empty()) {
          return with_message<reports::ReportResponse>(bytes, [&](reports::ReportResponse::Reader x) {
            return json_reply(response, http_status(x), to_json(x));
          });
        }
        return json_error(response, 503, "UNAVAILABLE", "this node runs no analytics service");
      });
  }

  static std::string describe_short(const caf::error& err) {
    auto s = describe(err);
    auto p = s.find(": ");
    return p == std::string::npos ? s : s.substr(p + 2);
  }

  kj::Promise<void> send(Response& response, uint status, kj::StringPtr text,
                         kj::StringPtr type, std::string body) {
    kj::HttpHeaders headers(table_);
    headers.set(kj::HttpHeaderId::CONTENT_TYPE, type);
    auto out = response.send(status, text, headers, body.size());
    auto buf = kj::heapString(body.data(), body.size());
    auto p = out->write(buf.begin(), buf.size());
    return p.attach(kj::mv(out), kj::mv(buf));
  }

  kj::HttpHeaderTable& table_;
  std::shared_ptr<node_metrics> metrics_;
  std::string node_;
  analytics_bridge& analytics_;
};

class log_errors final : public kj::TaskSet::ErrorHandler {
public:
  void taskFailed(kj::Exception&& e) override {
    spdlog::warn("rpc: listener task failed: {}", e.getDescription().cStr());
  }
};

} // namespace

struct rpc_host::impl {
  caf::actor_system& sys;
  rpc_options opts;
  std::shared_ptr<node_metrics> metrics;
  std::thread thread;
  std::mutex mtx;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> stopper;
  std::atomic<uint16_t> rpc_port{0};
  std::atomic<uint16_t> http_port{0};

  impl(caf::actor_system& s, rpc_options o, std::shared_ptr<node_metrics> m)
    : sys(s), opts(std::move(o)), metrics(std::move(m)) {}

  void run(std::promise<caf::error>& ready) {
    bool announced = false;
    try {
      auto io = kj::setupAsyncIo();
      auto stop = kj::newPromiseAndCrossThreadFulfiller<void>();
      {
        std::lock_guard<std::mutex> guard{mtx};
        stopper = kj::mv(stop.fulfiller);
      }
      auto& network = io.provider->getNetwork();
      kj::HttpHeaderTable table;
      bridge br{sys, io.provider->getTimer()};
      analytics_bridge ab{sys};
      log_errors on_error;
      kj::TaskSet tasks{on_error};
      http_service svc{table, metrics, opts.node_name, ab};
      kj::HttpServer http{io.provider->getTimer(), table, svc};
      kj::Own<kj::ConnectionReceiver> rpc_listener;
      kj::Own<kj::ConnectionReceiver> http_listener;
      kj::Own<capnp::TwoPartyServer> rpc;
      if (opts.enable_rpc) {
        auto addr = network.parseAddress(opts.host, opts.rpc_port).wait(io.waitScope);
        rpc_listener = addr->listen();
        rpc_port = static_cast<uint16_t>(rpc_listener->getPort());
        rpc = kj::heap<capnp::TwoPartyServer>(kj::heap<node_impl>(br, ab, tasks));
        tasks.add(rpc->listen(*rpc_listener));
      }
      if (opts.enable_http) {
        auto addr = network.parseAddress(opts.host, opts.http_port).wait(io.waitScope);
        http_listener = addr->listen();
        http_port = static_cast<uint16_t>(http_listener->getPort());
        tasks.add(http.listenHttp(*http_listener));
      }
      announced = true;
      ready.set_value(caf::none);
      stop.promise.wait(io.waitScope);
    } catch (const kj::Exception& e) {
      auto msg = std::string("cannot serve RPC/HTTP on ") + opts.host + ": "
                 + e.getDescription().cStr();
      if (!announced)
        ready.set_value(make_error(runtime_errc::unreachable, msg));
      else
        spdlog::error("rpc: event loop failed: {}", msg);
    }
  }
};

rpc_host::rpc_host(caf::actor_system& sys, rpc_options opts,
                   std::shared_ptr<node_metrics> metrics)
  : impl_(std::make_unique<impl>(sys, std::move(opts), std::move(metrics))) {}

rpc_host::~rpc_host() {
  stop();
}

caf::error rpc_host::start() {
  std::promise<caf::error> ready;
  auto result = ready.get_future();
  impl_->thread = std::thread([this, &ready] { impl_->run(ready); });
  auto err = result.get();
  if (err) {
    impl_->thread.join();
    return err;
  }
  return caf::none;
}

void rpc_host::stop() {
  if (!impl_ || !impl_->thread.joinable())
    return;
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    if (impl_->stopper)
      impl_->stopper->fulfill();
  }
  impl_->thread.join();
}

uint16_t rpc_host::rpc_port() const noexcept {
  return impl_->rpc_port;
}

uint16_t rpc_host::http_port() const noexcept {
  return impl_->http_port;
}

} // namespace wharf::runtime
