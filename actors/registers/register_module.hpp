#pragma once
/// The register as a service module (`kv`): its child `services/register` on every node, its
/// `Register` capability (`Node.kv()`), and the console commands `get NODE KEY` and
/// `put NODE KEY VALUE`. A call for another node goes there through the cluster actor
/// (service "kv"); PEER_DOWN comes back at once when that node goes down meanwhile.

#include "runtime/module/service_module.hpp"

namespace wharf::actors {

class register_module final : public runtime::service_module {
public:
  const char* name() const override;
  const char* summary() const override;
  std::vector<runtime::module_child> children(const runtime::module_context& ctx) override;
  std::unique_ptr<runtime::module_front> make_front(runtime::front_context& ctx) override;
  std::vector<runtime::console_command> console_commands() const override;
};

} // namespace wharf::actors
