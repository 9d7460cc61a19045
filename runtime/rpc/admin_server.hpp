#pragma once
/// The node's own RPC interfaces: `Admin` (members, tree, actors, stats, kill), served by
/// handing each call to the cluster actor, and the `Node` bootstrap, which hands out `Admin`
/// and the capabilities of the modules' front ends by name. KJ loop thread only.

#include <map>
#include <string>

#include <capnp/capability.h>
#include <kj/async.h>

namespace wharf::runtime {

class kj_bridge;

/// The `Admin` capability (api.capnp). Calls time out after 30 s.
capnp::Capability::Client make_admin_server(kj_bridge& bridge);

/// The `Node` bootstrap: `admin()`, one typed accessor per module (the method named as the
/// module) and `service(name)`. `caps` maps module names to their capabilities; an accessor
/// or name without one fails with an UNIMPLEMENTED exception that names it.
capnp::Capability::Client make_node_server(capnp::Capability::Client admin,
                                           std::map<std::string, capnp::Capability::Client> caps);

/// Whether `api.capnp`'s `Node` has a typed accessor named `name`.
bool node_has_accessor(const std::string& name);

} // namespace wharf::runtime
