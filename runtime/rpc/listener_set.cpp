#include "runtime/rpc/listener_set.hpp"

#include <list>
#include <map>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include "runtime/core/metrics.hpp"
#include "runtime/core/types.hpp"
#include "runtime/rpc/accept_loop.hpp"

namespace wharf::runtime {

namespace {

std::string peer_of(kj::AsyncIoStream& s) {
  struct sockaddr_storage addr;
  uint len = sizeof(addr);
  try {
    s.getpeername(reinterpret_cast<struct sockaddr*>(&addr), &len);
  } catch (const kj::Exception&) {
    return "?";
  }
  char host[64] = "?";
  uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<struct sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<struct sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    port = ntohs(a->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

} // namespace

struct listener_set::impl final : public kj::TaskSet::ErrorHandler {
  struct entry {
    listener_spec spec;
    kj::Own<kj::ConnectionReceiver> receiver;
    uint16_t port = 0;
    metric* open = nullptr;
    metric* accepted = nullptr;
    metric* refused = nullptr;
    metric* errors = nullptr;
    size_t count = 0; // open connections
  };

  kj::Network& network;
  kj::Timer& timer;
  std::shared_ptr<node_metrics> metrics;
  std::list<entry> entries; // stable addresses: connections point at theirs
  kj::ForkedPromise<void> draining;
  kj::Own<kj::PromiseFulfiller<void>> start_draining;
  kj::Own<kj::PromiseFulfiller<void>> all_closed; // set while draining with connections open
  size_t open_total = 0;
  // Declared last, destroyed first: cancelling a connection runs `closed` on the above.
  kj::Own<kj::TaskSet> accepting = kj::heap<kj::TaskSet>(*this);
  kj::Own<kj::TaskSet> connections = kj::heap<kj::TaskSet>(*this);

  impl(kj::Network& n, kj::Timer& t, std::shared_ptr<node_metrics> m)
    : network(n), timer(t), metrics(std::move(m)), draining(nullptr) {
    auto paf = kj::newPromiseAndFulfiller<void>();
    draining = paf.promise.fork();
    start_draining = kj::mv(paf.fulfiller);
  }

  void taskFailed(kj::Exception&& e) override {
    spdlog::warn("listener: {}", e.getDescription().cStr());
  }

  kj::Promise<void> accept(entry& e) {
    return accept_loop(*e.receiver, timer, "listener " + e.spec.name,
                       [this, &e](kj::Own<kj::AsyncIoStream> s) {
                         e.accepted->add();
                         if (e.count >= e.spec.max_connections) {
                           e.refused->add(); // dropping `s` closes it
                           spdlog::warn("listener {}: {} connections open (max_connections); "
                                        "refused one", e.spec.name, e.count);
                           return;
                         }
                         connections->add(serve(e, kj::mv(s)));
                       });
  }

  kj::Promise<void> serve(entry& e, kj::Own<kj::AsyncIoStream> s) {
    ++e.count;
    ++open_total;
    e.open->set(static_cast<int64_t>(e.count));
    auto ctx = kj::heap<connection_context>(connection_context{peer_of(*s), draining});
    auto& stream = *s;
    auto& c = *ctx;
    return kj::evalNow([&] { return e.spec.handler(stream, c); })
      .catch_([&e](kj::Exception&& ex) {
        if (ex.getType() != kj::Exception::Type::DISCONNECTED) {
          e.errors->add();
          spdlog::warn("listener {}: a connection failed: {}", e.spec.name,
                       ex.getDescription().cStr());
        }
      })
      .attach(kj::mv(s), kj::mv(ctx), kj::defer([this, &e] { closed(e); }));
  }

  void closed(entry& e) {
    --e.count;
    --open_total;
    e.open->set(static_cast<int64_t>(e.count));
    if (open_total == 0 && all_closed)
      all_closed->fulfill();
  }
};

listener_set::listener_set(kj::Network& network, kj::Timer& timer,
                           std::shared_ptr<node_metrics> metrics)
  : impl_(std::make_unique<impl>(network, timer, std::move(metrics))) {}

listener_set::~listener_set() = default;

caf::error listener_set::add(const std::string& host, listener_spec spec,
                             kj::WaitScope& wait_scope) {
  auto& x = *impl_;
  auto name = spec.name;
  try {
    auto addr = x.network.parseAddress(host, spec.port).wait(wait_scope);
    auto receiver = addr->listen(); // an entry only once the port is bound
    auto& e = x.entries.emplace_back();
    e.receiver = kj::mv(receiver);
    e.port = static_cast<uint16_t>(e.receiver->getPort());
    e.spec = std::move(spec);
    metric_labels labels{{"listener", name}};
    auto& m = *x.metrics;
    e.open = &m.get("listener_connections", metric_kind::gauge,
                    "open connections of a module's listener", labels);
    e.accepted = &m.get("listener_accepted_total", metric_kind::counter,
                        "connections a module's listener accepted", labels);
    e.refused = &m.get("listener_refused_total", metric_kind::counter,
                       "connections closed at once (over max_connections)", labels);
    e.errors = &m.get("listener_errors_total", metric_kind::counter,
                      "connections whose handler failed", labels);
    x.accepting->add(x.accept(e));
    spdlog::info("listener {} on {}:{}", name, host, e.port);
    return caf::none;
  } catch (const kj::Exception& ex) {
    return make_error(runtime_errc::unreachable, "cannot listen for " + name + " on " + host + ":"
                                                   + std::to_string(spec.port) + ": "
                                                   + ex.getDescription().cStr());
  }
}

uint16_t listener_set::port(const std::string& name) const {
  for (auto& e : impl_->entries)
    if (e.spec.name == name)
      return e.port;
  return 0;
}

kj::Promise<void> listener_set::drain(std::chrono::milliseconds timeout) {
  auto& x = *impl_;
  // No new connections: dropping the accept loops and the receivers closes the ports.
  x.accepting = kj::heap<kj::TaskSet>(x);
  for (auto& e : x.entries)
    e.receiver = nullptr;
  if (x.start_draining) {
    x.start_draining->fulfill();
    x.start_draining = nullptr;
  }
  if (x.open_total == 0)
    return kj::READY_NOW;
  spdlog::info("listeners: draining {} open connections (up to {} ms)", x.open_total,
               timeout.count());
  auto paf = kj::newPromiseAndFulfiller<void>();
  x.all_closed = kj::mv(paf.fulfiller);
  auto deadline = x.timer.afterDelay(timeout.count() * kj::MILLISECONDS).then([&x] {
    spdlog::warn("listeners: {} connections still open after the drain time; closing them",
                 x.open_total);
  });
  return paf.promise.exclusiveJoin(kj::mv(deadline)).then([&x] {
    x.connections = kj::heap<kj::TaskSet>(x); // cancels what is left
  });
}

} // namespace wharf::runtime
