// wharf-node: runs one node of a wharf cluster. It is the list of service modules it links;
// runtime::node_main does the rest (flags, config file, --help, --dump-config; exit codes 0
// clean stop, 1 runtime failure, 2 bad configuration or usage). Adding a service adds a
// module here.
#include "actors/analytics/module.hpp"
#include "actors/registers/register_module.hpp"
#include "runtime/node/node.hpp"

int main(int argc, char** argv) {
  wharf::actors::register_module kv;
  wharf::actors::analytics_module analytics;
  return wharf::runtime::node_main(argc, argv, {&kv, &analytics});
}
