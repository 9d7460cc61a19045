#include "actors/analytics/module.hpp"

#include <iomanip>
#include <iostream>
#include <sstream>

#include <malloc.h>

#include "actors/analytics/atoms.hpp"
#include "actors/analytics/front_end.hpp"
#include "actors/analytics/report_json.hpp"
#include "actors/analytics/service.hpp"
#include "protocols/analytics.capnp.h"
#include "runtime/console/console.hpp"
#include "runtime/core/types.hpp"
#include "runtime/rpc/rpc_client.hpp"

namespace wharf::actors {

using namespace wharf::runtime;
namespace rp = wharf::reports;
namespace ad = analytics_detail;

namespace {

std::string elapsed_text(uint64_t ms) {
  std::ostringstream os;
  if (ms < 60000)
    os << std::fixed << std::setprecision(1) << static_cast<double>(ms) / 1000 << " s";
  else
    os << ms / 60000 << " min " << (ms % 60000) / 1000 << " s";
  return os.str();
}

std::string render_list(rp::ReportList::Reader l) {
  std::ostringstream os;
  os << "node " << l.getNode().cStr() << '\n';
  if (l.getReports().size() == 0)
    return os.str() + "no reports (running, queued or finished within analytics.result_ttl_s)\n";
  os << std::left << std::setw(26) << "ID" << std::setw(24) << "NAME" << std::setw(11)
     << "STATUS" << std::setw(10) << "MODE" << std::setw(11) << "PROGRESS" << std::setw(14)
     << "ELAPSED" << "COORDINATOR\n";
  for (auto r : l.getReports()) {
    auto progress = std::to_string(r.getPartitionsDone()) + "/" + std::to_string(r.getPartitions());
    std::string status = to_string(r.getStatus());
    if (r.getErrorCode().size() > 0)
      status += " (" + std::string(r.getErrorCode().cStr()) + ")";
    os << std::left << std::setw(26) << r.getReportId().cStr() << std::setw(24)
       << r.getName().cStr() << std::setw(11) << status << std::setw(10)
       << to_string(r.getMode()) << std::setw(11) << progress << std::setw(14)
       << elapsed_text(r.getElapsedMs()) << r.getCoordinator().cStr() << '\n';
  }
  return os.str();
}

console_result reports_command(rpc_client& client, const std::vector<std::string>& args) {
  auto node = args.empty() ? std::string{} : args[0];
  auto r = client.call<std::string>([node](api::Node::Client n) {
    auto req = n.analyticsRequest().send().getAnalytics().listRequest();
    req.setNode(node);
    return req.send().then([](auto resp) {
      auto l = resp.getList();
      if (l.getErrorCode().size() > 0)
        return "!" + std::string(l.getErrorCode().cStr()) + "!" + l.getError().cStr();
      return render_list(l);
    });
  });
  if (!r)
    return console_result::failure("", describe(r.error()));
  if (!r->empty() && (*r)[0] == '!') {
    auto sep = r->find('!', 1);
    return console_result::failure(r->substr(1, sep - 1), r->substr(sep + 1));
  }
  console_result res;
  res.output = *r;
  return res;
}

console_result cancel_command(rpc_client& client, const std::vector<std::string>& args) {
  auto id = args[0];
  struct answer {
    std::string status, code, message, node;
  };
  auto r = client.call<answer>([id](api::Node::Client n) {
    auto req = n.analyticsRequest().send().getAnalytics().cancelRequest();
    req.setReportId(id);
    return req.send().then([](auto resp) {
      auto x = resp.getResponse();
      return answer{to_string(x.getStatus()), x.getErrorCode().cStr(), x.getErrorMessage().cStr(),
                    x.getNode().cStr()};
    });
  });
  if (!r)
    return console_result::failure("", describe(r.error()));
  if (r->status != "cancelled" && !r->code.empty())
    return console_result::failure(r->code, r->message);
  console_result res;
  res.output = "report " + id + " on " + r->node + ": " + r->status
               + (r->status == "cancelled" ? "" : " (it had ended already)") + "\n";
  return res;
}

} // namespace

const char* analytics_module::name() const {
  return ad::service_name;
}

const char* analytics_module::summary() const {
  return "offloaded SQL analytics over PostgreSQL (wharf report, /v1/reports)";
}

void analytics_module::configure(config_root& root) {
  actors::configure(root, settings_);
}

caf::error analytics_module::validate(const node_config&) const {
  return check_reports(settings_.reports);
}

void analytics_module::prepare_process() {
  // Reports allocate and free hundreds of MB in big blocks (aggregation tables, sorted
  // partials, chunks, pages) on many threads. The memory stays in malloc's heap between
  // reports and is reused: one arena (a block freed by one thread serves the next report's
  // threads, where per-thread arenas unmapped whole heaps on free), no mapping of its own
  // for a big block, and no trim on free. Otherwise every report faulted in, zeroed and
  // charged its memory again: ~100-200k page faults a 10M-row report on 3 nodes (~1.7 us
  // each on our VM). The service gives the memory back (malloc_trim) after
  // `analytics.keep_memory_s` without reports.
  if (mallopt(M_ARENA_MAX, 1) != 1 || mallopt(M_MMAP_MAX, 0) != 1
      || mallopt(M_TRIM_THRESHOLD, -1) != 1)
    std::cerr << "wharf-node: warning: malloc refused a setting (M_ARENA_MAX, M_MMAP_MAX or "
                 "M_TRIM_THRESHOLD); reports may fault their memory in again\n";
}

std::vector<column_family_spec> analytics_module::column_families() const {
  return {{ad::results_family, true}};
}

std::vector<module_child> analytics_module::children(const module_context& ctx) {
  // Every node coordinates the reports it is asked for; reads go to nodes with role worker.
  return {{analytics_child(ctx.node, settings_), {}}};
}

std::unique_ptr<module_front> analytics_module::make_front(front_context& ctx) {
  return make_analytics_front(ctx);
}

std::vector<console_command> analytics_module::console_commands() const {
  return {
    {"reports", "reports [NODE]",
     "reports NODE coordinates: running and queued, then recent (id, name, mode, progress, "
     "elapsed)",
     0, 1, reports_command},
    {"cancel", "cancel REPORT_ID", "cancel a running or queued report (any node's)", 1, 1,
     cancel_command},
  };
}

} // namespace wharf::actors
