#pragma once
/// The accept loop of every port the node's KJ loop serves (RPC, HTTP, modules' listeners):
/// hands each connection to `serve` and keeps accepting after a failed accept (out of file
/// descriptors, a reset before accept), logging it and pausing 100 ms, instead of leaving
/// the port dead until a restart. KJ loop thread only; runs until cancelled.

#include <functional>
#include <string>

#include <kj/async-io.h>

namespace wharf::runtime {

kj::Promise<void> accept_loop(kj::ConnectionReceiver& receiver, kj::Timer& timer,
                              std::string what,
                              std::function<void(kj::Own<kj::AsyncIoStream>)> serve);

} // namespace wharf::runtime
