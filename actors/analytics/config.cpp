#include "actors/analytics/config.hpp"

#include "actors/analytics/atoms.hpp"
#include "runtime/config/config_section.hpp"

namespace wharf::actors {

void configure(runtime::config_root& root, analytics_settings& s) {
  using runtime::config_section;
  constexpr int64_t day_ms = 24 * 3600 * 1000;
  auto& a = s.analytics;
  root.section("analytics", "offloaded reports over PostgreSQL (wharf report, /v1/reports)",
               [&](config_section& c) {
                 c.text("dsn", a.dsn, "libpq connection string; empty = $WHARF_PG_DSN");
                 c.count("readers", a.readers, 1, 64,
                         "partition readers (PostgreSQL connections) per node");
                 c.count("partitions", a.partitions, 0, analytics_detail::max_partitions,
                         "per report; 0 = 4 x worker threads x worker nodes");
                 c.count("large_result_rows", a.large_result_rows, 1, size_t{1} << 32,
                         "larger results are stored and fetched by reference, page by page");
                 c.millis("default_deadline_ms", a.default_deadline, 1, day_ms,
                          "a report's deadline when the request names none");
                 c.count("max_attempts", a.max_attempts, 1, 100,
                         "reads of one partition before the report fails");
                 c.seconds("result_ttl_s", a.result_ttl, 1, 30 * 24 * 3600,
                           "how long finished reports and stored results are kept");
                 c.seconds("keep_memory_s", a.keep_memory, 0, 24 * 3600,
                           "freed report memory kept pooled after the last report");
                 c.count("max_running_reports", a.max_running, 1, 256,
                         "reports this node coordinates at once; more wait in order");
                 c.count("max_queued_reports", a.max_queued, 0, 100000,
                         "reports that may wait; more get RESOURCE_EXHAUSTED (HTTP 503)");
                 c.millis("queue_wait_ms", a.queue_wait, 1, day_ms,
                          "the longest a report waits to start");
                 c.count("test_drop_reads", a.test_drop_reads, 0, 1000,
                         "fault injection for tests: drop the first N read calls unanswered");
               });
  root.tables<report_config>(
    "reports", "a declarative report (every node should carry the same ones)", s.reports,
    [](config_section& c, report_config& r) {
      c.text("name", r.name, "the report's name").required("name");
      c.text("table", r.table, "the table it reads").required("table");
      c.text("partition_column", r.partition_column, "an integer column, or \"ctid\" (page ranges)");
      c.text("time_column", r.time_column, "BETWEEN the request's start and end; \"\" = none");
      c.text("user_column", r.user_column, "= ANY(the request's user ids); \"\" = none");
      c.texts("filter_columns", r.filter_columns, "columns a request may filter on (equality)");
      c.texts("group_by", r.group_by, "the group keys").required("group_by");
      c.texts("aggregates", r.aggregates,
              "\"fn(column) AS name\": count sum avg min max count_distinct")
        .required("aggregates");
    });
}

} // namespace wharf::actors
