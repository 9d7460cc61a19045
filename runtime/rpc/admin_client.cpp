#include "runtime/rpc/admin_client.hpp"

#include <capnp/ez-rpc.h>
#include <kj/async-io.h>

#include "protocols/api.capnp.h"
#include "protocols/capnp_convert.hpp"
#include "runtime/core/types.hpp"

namespace wharf::runtime {

using protocols::admin_command;
using protocols::admin_reply;

struct admin_client::impl {
  std::string target;
  std::chrono::milliseconds timeout;
  kj::Own<capnp::EzRpcClient> client; // created on first call, recreated after a failure

};

namespace {

kj::StringPtr text(const std::string& s) {
  return kj::StringPtr(s.c_str(), s.size());
}

template <class Request>
kj::Promise<admin_reply> send(Request req) {
  return req.send().then([](auto resp) { return protocols::read_admin_reply(resp.getReply()); });
}

} // namespace

admin_client::admin_client(std::string host, uint16_t port, std::chrono::milliseconds timeout)
  : impl_(std::make_unique<impl>()) {
  impl_->target = host + ":" + std::to_string(port);
  impl_->timeout = timeout;
}

admin_client::~admin_client() = default;

const std::string& admin_client::target() const noexcept {
  return impl_->target;
}

namespace {

// One attempt; nullptr on timeout. Every capability and promise it creates is destroyed when
// it returns (or unwinds), before the caller may drop the client and its event loop.
kj::Maybe<admin_reply> attempt(capnp::EzRpcClient& ez, const protocols::admin_request& req,
                               std::chrono::milliseconds timeout) {
  {
    auto admin = ez.getMain<api::Node>().adminRequest().send().getAdmin();
    // Every Admin method takes the target node; some take one or two more fields.
    auto to = [&](auto r) {
      r.setNode(text(req.node));
      return r;
    };
    kj::Promise<admin_reply> p = nullptr;
    switch (req.command) {
      case admin_command::members: p = send(to(admin.membersRequest())); break;
      case admin_command::tree: p = send(to(admin.treeRequest())); break;
      case admin_command::actors: p = send(to(admin.actorsRequest())); break;
      case admin_command::stats: p = send(to(admin.statsRequest())); break;
      case admin_command::kill: {
        auto r = to(admin.killRequest());
        r.setPath(text(req.path));
        p = send(kj::mv(r));
        break;
      }
      case admin_command::get: {
        auto r = to(admin.getRequest());
        r.setKey(text(req.key));
        p = send(kj::mv(r));
        break;
      }
      case admin_command::put: {
        auto r = to(admin.putRequest());
        r.setKey(text(req.key));
        r.setValue(text(req.value));
        p = send(kj::mv(r));
        break;
      }
    }
    auto timed = p.then([](admin_reply r) -> kj::Maybe<admin_reply> { return kj::mv(r); })
                   .exclusiveJoin(ez.getIoProvider()
                                    .getTimer()
                                    .afterDelay(timeout.count() * kj::MILLISECONDS)
                                    .then([]() -> kj::Maybe<admin_reply> { return nullptr; }));
    return timed.wait(ez.getWaitScope());
  }
}

} // namespace

caf::expected<admin_reply> admin_client::call(const protocols::admin_request& req) {
  try {
    if (!impl_->client)
      impl_->client = kj::heap<capnp::EzRpcClient>(impl_->target);
    auto result = attempt(*impl_->client, req, impl_->timeout);
    KJ_IF_MAYBE (r, result) {
      return kj::mv(*r);
    }
    impl_->client = nullptr; // the connection may be wedged: start afresh next time
    return make_error(runtime_errc::timeout, impl_->target + " did not answer within "
                                               + std::to_string(impl_->timeout.count()) + " ms");
  } catch (const kj::Exception& e) {
    impl_->client = nullptr; // reconnect on the next call
    return make_error(runtime_errc::unreachable,
                      "cannot reach " + impl_->target + ": " + e.getDescription().cStr());
  }
}

} // namespace wharf::runtime
