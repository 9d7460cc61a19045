// echo_node: a wharf-node that links only the test module (tests/module), for
// tests/system/module_test.cpp. Same flags as wharf-node.
#include "runtime/node/node.hpp"
#include "tests/module/echo_module.hpp"

int main(int argc, char** argv) {
  wharf::test::echo_module echo;
  return wharf::runtime::node_main(argc, argv, {&echo});
}
