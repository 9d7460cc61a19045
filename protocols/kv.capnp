@0x82c539225b78f0ad;
# The durable key/value register (module `kv`, actors/registers/): the reply apps and the
# console get through api.capnp's `Register`, and the call one node forwards to another when
# the register that must answer lives there (carried as `ServiceCall.payload` in
# cluster.capnp, service "register"). Compatibility: never renumber or reuse an ordinal.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("wharf::kv");

# The answer to a get or put.
struct RegisterReply {
  error @0 :Text;       # empty on success; otherwise a one-line human-readable reason
  errorCode @1 :Text;   # protocols/error_code.hpp: NOT_FOUND, PEER_DOWN, STORAGE_FAILURE, ...
  found @2 :Bool;       # get: whether the key exists
  value @3 :Text;       # get: the value
  node @4 :Text;        # the node whose register answered
}

# A get or put for the register of the node that receives it.
struct RegisterCall {
  key @0 :Text;
  union {
    get @1 :Void;
    put @2 :Text;       # the value to write
  }
}
