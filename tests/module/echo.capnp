@0x8ae9b3dcba629ec3;
# The test module's interface (tests/module/): proves that a service plugs into a node through
# the module boundary alone. Served as `Node.service("echo")`.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("wharf::echo");

interface Echo {
  # Answers "<greeting> <text>" from the echo actor of the node reached, and remembers `text`
  # durably (in the module's own column family) as the last one said.
  say @0 (text :Text) -> (reply :Text);
  # The last text said on this node (survives a restart), or "" when none.
  last @1 () -> (text :Text);
}
