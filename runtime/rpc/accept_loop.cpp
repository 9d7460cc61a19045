#include "runtime/rpc/accept_loop.hpp"

#include <spdlog/spdlog.h>

namespace wharf::runtime {

namespace {

constexpr auto accept_pause = 100 * kj::MILLISECONDS; // after a failed accept

} // namespace

kj::Promise<void> accept_loop(kj::ConnectionReceiver& receiver, kj::Timer& timer,
                              std::string what,
                              std::function<void(kj::Own<kj::AsyncIoStream>)> serve) {
  return receiver.accept().then(
    [&receiver, &timer, what, serve](kj::Own<kj::AsyncIoStream> s) mutable {
      serve(kj::mv(s));
      return accept_loop(receiver, timer, kj::mv(what), kj::mv(serve));
    },
    [&receiver, &timer, what, serve](kj::Exception&& e) mutable {
      spdlog::warn("{}: accepting a connection failed: {}; accepting again in 100 ms", what,
                   e.getDescription().cStr());
      return timer.afterDelay(accept_pause).then([&receiver, &timer, what, serve]() mutable {
        return accept_loop(receiver, timer, kj::mv(what), kj::mv(serve));
      });
    });
}

} // namespace wharf::runtime
