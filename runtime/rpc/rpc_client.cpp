#include "runtime/rpc/rpc_client.hpp"

#include <capnp/ez-rpc.h>
#include <kj/async-io.h>

#include "runtime/core/types.hpp"

namespace wharf::runtime {

struct rpc_client::impl {
  std::string target;
  std::chrono::milliseconds timeout;
  kj::Own<capnp::EzRpcClient> client; // created on first call, recreated after a failure
};

rpc_client::rpc_client(std::string host, uint16_t port, std::chrono::milliseconds timeout)
  : impl_(std::make_unique<impl>()) {
  impl_->target = host + ":" + std::to_string(port);
  impl_->timeout = timeout;
}

rpc_client::~rpc_client() = default;

const std::string& rpc_client::target() const noexcept {
  return impl_->target;
}

std::chrono::milliseconds rpc_client::timeout() const noexcept {
  return impl_->timeout;
}

caf::error rpc_client::run(const std::function<kj::Promise<void>(api::Node::Client)>& f) {
  try {
    if (!impl_->client)
      impl_->client = kj::heap<capnp::EzRpcClient>(impl_->target);
    auto& ez = *impl_->client;
    bool done = false;
    {
      // Every capability and promise made here is gone before the client may be dropped.
      auto timed = f(ez.getMain<api::Node>())
                     .then([] { return true; })
                     .exclusiveJoin(ez.getIoProvider()
                                      .getTimer()
                                      .afterDelay(impl_->timeout.count() * kj::MILLISECONDS)
                                      .then([] { return false; }));
      done = timed.wait(ez.getWaitScope());
    }
    if (done)
      return caf::none;
    impl_->client = nullptr; // the connection may be wedged: start afresh next time
    return make_error(runtime_errc::timeout, impl_->target + " did not answer within "
                                               + std::to_string(impl_->timeout.count()) + " ms");
  } catch (const kj::Exception& e) {
    // The node answered, but not with a result: the call is wrong here, the link is fine.
    if (e.getType() == kj::Exception::Type::UNIMPLEMENTED)
      return make_error(protocols::error_code::unimplemented,
                        impl_->target + ": " + e.getDescription().cStr());
    if (e.getType() == kj::Exception::Type::OVERLOADED)
      return make_error(protocols::error_code::unavailable,
                        impl_->target + " is overloaded: " + e.getDescription().cStr());
    impl_->client = nullptr; // DISCONNECTED or FAILED: reconnect on the next call
    return make_error(runtime_errc::unreachable,
                      "cannot reach " + impl_->target + ": " + e.getDescription().cStr());
  }
}

} // namespace wharf::runtime
