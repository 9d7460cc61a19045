#include "runtime/rpc/rpc_host.hpp"

#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <spdlog/spdlog.h>

#include "runtime/core/metrics.hpp"
#include "runtime/core/types.hpp"
#include "runtime/http/http_server.hpp"
#include "runtime/module/service_module.hpp"
#include "runtime/rpc/accept_loop.hpp"
#include "runtime/rpc/admin_server.hpp"
#include "runtime/rpc/front_end.hpp"
#include "runtime/rpc/listener_set.hpp"

namespace wharf::runtime {

namespace {

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
  kj::Own<const kj::Executor> executor;
  listener_set* listeners = nullptr; // KJ thread only, while the loop runs
  std::atomic<uint16_t> rpc_port{0};
  std::atomic<uint16_t> http_port{0};
  std::map<std::string, uint16_t> listener_ports; // written before start() returns

  impl(caf::actor_system& s, rpc_options o, std::shared_ptr<node_metrics> m)
    : sys(s), opts(std::move(o)), metrics(std::move(m)) {}

  // Binds host:port; the error names what the port is for.
  kj::Own<kj::ConnectionReceiver> bind(kj::Network& network, kj::WaitScope& ws, uint16_t port,
                                       const char* what) {
    try {
      return network.parseAddress(opts.node.host, port).wait(ws)->listen();
    } catch (const kj::Exception& e) {
      kj::throwFatalException(KJ_EXCEPTION(FAILED, kj::str(what, " port ", port, ": ",
                                                           e.getDescription())));
    }
  }

  void run(std::promise<caf::error>& ready) {
    bool announced = false;
    try {
      auto io = kj::setupAsyncIo();
      auto stop = kj::newPromiseAndCrossThreadFulfiller<void>();
      {
        std::lock_guard<std::mutex> guard{mtx};
        stopper = kj::mv(stop.fulfiller);
        executor = kj::getCurrentThreadExecutor().addRef();
      }
      auto& network = io.provider->getNetwork();
      auto& timer = io.provider->getTimer();
      kj_bridge bridge{sys};
      log_errors on_error;
      // Owned so that they end, with every connection and task they hold, before the fronts
      // whose handlers those may use (see the end of this function).
      auto tasks = kj::heap<kj::TaskSet>(on_error);
      auto http = std::make_unique<http_server>(timer, opts.node.name, metrics,
                                                opts.node.http_max_body);
      auto extra = std::make_unique<listener_set>(network, timer, metrics);
      front_context ctx{bridge, opts.node, metrics, timer, *tasks, network};
      // Each module's front end: its capability, routes and listeners.
      std::vector<std::unique_ptr<module_front>> fronts;
      std::map<std::string, capnp::Capability::Client> caps;
      for (auto* m : opts.modules) {
        auto front = m->make_front(ctx);
        if (!front)
          continue;
        KJ_IF_MAYBE (cap, front->capability()) {
          caps.emplace(m->name(), *cap);
          spdlog::debug("rpc: module {} served as Node.{}", m->name(),
                        node_has_accessor(m->name()) ? std::string(m->name()) + "()"
                                                     : "service(\"" + std::string(m->name()) + "\")");
        }
        front->add_routes(http->routes());
        for (auto& spec : front->listeners()) {
          auto name = spec.name;
          if (auto err = extra->add(opts.node.host, std::move(spec), io.waitScope)) {
            ready.set_value(err);
            announced = true;
            return;
          }
          listener_ports[name] = extra->port(name);
        }
        fronts.push_back(std::move(front));
      }
      listeners = extra.get();
      kj::Own<kj::ConnectionReceiver> rpc_listener;
      kj::Own<kj::ConnectionReceiver> http_listener;
      kj::Own<capnp::TwoPartyServer> rpc;
      if (opts.enable_rpc) {
        rpc_listener = bind(network, io.waitScope, opts.node.rpc_port, "RPC");
        rpc_port = static_cast<uint16_t>(rpc_listener->getPort());
        rpc = kj::heap<capnp::TwoPartyServer>(
          make_node_server(make_admin_server(bridge), std::move(caps)));
        auto* server = rpc.get();
        tasks->add(accept_loop(*rpc_listener, timer, "rpc", [server](kj::Own<kj::AsyncIoStream> s) {
          server->accept(kj::mv(s));
        }));
      }
      if (opts.enable_http) {
        http_listener = bind(network, io.waitScope, opts.node.http_port, "HTTP");
        http_port = static_cast<uint16_t>(http_listener->getPort());
        tasks->add(http->listen(*http_listener));
      }
      announced = true;
      ready.set_value(caf::none);
      stop.promise.wait(io.waitScope);
      listeners = nullptr;
      // Ends every task, connection and request (RPC, HTTP, module listeners) before the
      // fronts they may use go away.
      tasks = nullptr;
      rpc = nullptr;
      http = nullptr;
      extra = nullptr;
      fronts.clear();
    } catch (const kj::Exception& e) {
      listeners = nullptr;
      auto msg = std::string("cannot serve RPC/HTTP on ") + opts.node.host + ": "
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
    stop();
    return err;
  }
  return caf::none;
}

void rpc_host::drain(std::chrono::milliseconds timeout) {
  kj::Own<const kj::Executor> exec;
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    if (!impl_->executor || !impl_->executor->isLive())
      return;
    exec = impl_->executor->addRef();
  }
  try {
    exec->executeSync([this, timeout]() -> kj::Promise<void> {
      if (!impl_->listeners)
        return kj::READY_NOW;
      return impl_->listeners->drain(timeout);
    });
  } catch (const kj::Exception& e) {
    spdlog::warn("rpc: draining the listeners failed: {}", e.getDescription().cStr());
  }
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

uint16_t rpc_host::listener_port(const std::string& name) const {
  auto i = impl_->listener_ports.find(name);
  return i == impl_->listener_ports.end() ? 0 : i->second;
}

} // namespace wharf::runtime
