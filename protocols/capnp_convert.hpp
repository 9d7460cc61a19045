#pragma once
/// Conversions between the plain structs of `messages.hpp` and their generated Cap'n Proto
/// builders/readers, for code that speaks capnp directly (the RPC server and client).
/// Readers may come from untrusted peers: the caller decodes under traversal limits and
/// catches `kj::Exception`.

#include "protocols/cluster.capnp.h"
#include "protocols/messages.hpp"

namespace wharf::protocols {

void write_admin_reply(wire::AdminReply::Builder out, const admin_reply& x);

admin_reply read_admin_reply(wire::AdminReply::Reader in);

} // namespace wharf::protocols
