#include "runtime/rpc/rpc_host.hpp"

#include <future>
#include <mutex>
#include <thread>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/compat/http.h>
#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include "protocols/api.capnp.h"
#include "protocols/capnp_convert.hpp"
#include "runtime/core/metrics.hpp"
#include "runtime/core/types.hpp"

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

class node_impl final : public api::Node::Server {
public:
  explicit node_impl(bridge& b) : admin_(kj::heap<admin_impl>(b)) {}
  kj::Promise<void> admin(AdminContext ctx) override {
    ctx.getResults().setAdmin(admin_);
    return kj::READY_NOW;
  }

private:
  api::Admin::Client admin_;
};

class http_service final : public kj::HttpService {
public:
  http_service(kj::HttpHeaderTable& table, std::shared_ptr<node_metrics> metrics,
               std::string node)
    : table_(table), metrics_(std::move(metrics)), node_(std::move(node)) {}

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url, const kj::HttpHeaders&,
                            kj::AsyncInputStream&, Response& response) override {
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
                "unknown path; try /health or /metrics\n");
  }

private:
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
      http_service svc{table, metrics, opts.node_name};
      kj::HttpServer http{io.provider->getTimer(), table, svc};
      kj::Own<kj::ConnectionReceiver> rpc_listener;
      kj::Own<kj::ConnectionReceiver> http_listener;
      kj::Own<capnp::TwoPartyServer> rpc;
      log_errors on_error;
      kj::TaskSet tasks{on_error};
      if (opts.enable_rpc) {
        auto addr = network.parseAddress(opts.host, opts.rpc_port).wait(io.waitScope);
        rpc_listener = addr->listen();
        rpc_port = static_cast<uint16_t>(rpc_listener->getPort());
        rpc = kj::heap<capnp::TwoPartyServer>(kj::heap<node_impl>(br));
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
