#pragma once
/// The test module: a small service that uses every hook of the module boundary, and the
/// worked example of how to add a service (see tests/module/README.md). It brings:
/// - config `[echo]`: `greeting` (text), `port` (its listener, 0 = a free port);
/// - a child `services/echo` on nodes with role `echo`, which answers `(call_atom, text)`
///   with "<greeting> <text>", keeps the last text in its column family `echo` and restores
///   it on start;
/// - a capability `Echo` (tests/module/echo.capnp), served as `Node.service("echo")`;
/// - HTTP `GET /v1/echo?text=...` and `POST /v1/echo` (body = text), JSON answers;
/// - a TCP listener `echo`: every line "x" gets "<greeting> x" back; when the node drains it
///   says "bye" and closes;
/// - console command `say TEXT`, and the metric `wharf_echo_calls_total`.

#include <string>

#include "runtime/module/service_module.hpp"

namespace wharf::test {

class echo_module final : public runtime::service_module {
public:
  const char* name() const override { return "echo"; }
  const char* summary() const override { return "the test module (tests/module)"; }
  void configure(runtime::config_root& root) override;
  caf::error validate(const runtime::node_config& node) const override;
  void add_types(caf::actor_system_config& cfg) override;
  std::vector<runtime::column_family_spec> column_families() const override;
  std::vector<runtime::module_child> children(const runtime::module_context& ctx) override;
  std::unique_ptr<runtime::module_front> make_front(runtime::front_context& ctx) override;
  std::vector<runtime::console_command> console_commands() const override;

  struct config {
    std::string greeting = "hello";
    uint16_t port = 0;
  };
  const config& settings() const { return cfg_; }

private:
  config cfg_;
};

} // namespace wharf::test
