#pragma once
/// Offloaded analytics as a service module (`analytics`): `[analytics]` and `[[reports]]` in
/// the node config, the service `services/analytics` on every node (reads go to nodes with
/// role `worker`), its stored results in the column family `analytics_results`, the
/// `Analytics` capability (`Node.analytics()`), HTTP `/v1/reports...`, the console commands
/// `reports [NODE]` and `cancel REPORT_ID`, and the metrics `wharf_reports_*`.

#include "actors/analytics/config.hpp"
#include "runtime/module/service_module.hpp"

namespace wharf::actors {

class analytics_module final : public runtime::service_module {
public:
  const char* name() const override;
  const char* summary() const override;
  void configure(runtime::config_root& root) override;
  caf::error validate(const runtime::node_config& node) const override;
  void prepare_process() override;
  std::vector<runtime::column_family_spec> column_families() const override;
  std::vector<runtime::module_child> children(const runtime::module_context& ctx) override;
  std::unique_ptr<runtime::module_front> make_front(runtime::front_context& ctx) override;
  std::vector<runtime::console_command> console_commands() const override;

  /// What `configure` read.
  const analytics_settings& settings() const noexcept { return settings_; }

private:
  analytics_settings settings_;
};

} // namespace wharf::actors
