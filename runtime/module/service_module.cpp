#include "runtime/module/service_module.hpp"

#include "runtime/console/console.hpp"
#include "runtime/rpc/front_end.hpp"

namespace wharf::runtime {

service_module::~service_module() = default;

void service_module::configure(config_root&) {
  // nothing to configure
}

caf::error service_module::validate(const node_config&) const {
  return caf::none;
}

void service_module::prepare_process() {
  // no process-wide settings
}

void service_module::add_types(caf::actor_system_config&) {
  // no message types of its own
}

std::vector<column_family_spec> service_module::column_families() const {
  return {};
}

std::vector<module_child> service_module::children(const module_context&) {
  return {};
}

std::unique_ptr<module_front> service_module::make_front(front_context&) {
  return nullptr;
}

std::vector<console_command> service_module::console_commands() const {
  return {};
}

module_front::~module_front() = default;

kj::Maybe<capnp::Capability::Client> module_front::capability() {
  return nullptr;
}

void module_front::add_routes(route_table&) {
  // no routes
}

std::vector<listener_spec> module_front::listeners() {
  return {};
}

} // namespace wharf::runtime
