#pragma once
/// Planning a report (coordinator): from a report definition and a request to a
/// `report_plan` and its partitions.
///
/// Planning (coordinator): looks the table's columns up in the catalog (unknown columns and
/// non-numeric aggregate inputs are INVALID_ARGUMENT), decides how group keys decode, picks
/// the read mode for `auto` from PostgreSQL's statistics (pg_class.reltuples and
/// pg_stats.n_distinct: many groups per row → pull, few → pushdown) and splits the partition
/// column's range (or the table's pages, for "ctid") into partitions.
///
/// A plan travels to the worker nodes (plan_codec.hpp), which read its partitions
/// (partition_reader.hpp). Every function here that takes a connection blocks: call it from
/// detached actors only.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actors/analytics/agg_table.hpp"
#include "actors/analytics/key_codec.hpp"
#include "actors/analytics/report_def.hpp"

namespace wharf::runtime {
class pg_connection;
} // namespace wharf::runtime

namespace wharf::actors {

enum class read_mode : uint8_t { automatic, pushdown, pull };

const char* to_string(read_mode x) noexcept; ///< "auto", "pushdown", "pull"

/// A request made executable: resolved definition, values, column types, the mode to use.
struct report_plan {
  std::string report_id;
  report_def def;
  report_params params;
  read_mode mode = read_mode::pushdown;      ///< never automatic once planned
  std::map<std::string, std::string> column_types; ///< referenced column -> format_type
  std::vector<key_kind> key_kinds;
  std::vector<bool> key_as_text;
  std::set<std::string> not_null;            ///< referenced columns declared NOT NULL
  std::string mode_reason;                   ///< why auto chose the mode (for logs)
  /// A snapshot exported by the coordinator (pg_export_snapshot): every partition reads the
  /// table as of that one moment, so concurrent writes cannot make partitions disagree.
  std::string snapshot;
  /// How many partitions the report was split into (0 = unknown). A partition's statement
  /// is JIT-compiled when the whole report's would be: PostgreSQL's `jit_above_cost` is
  /// divided by this within the partition's transaction.
  uint32_t partitions = 0;
  /// The coordinator's session settings that decide how values are parsed and spelled
  /// (TimeZone, DateStyle, IntervalStyle, lc_monetary; extra_float_digits = 1 so floats
  /// travel exactly), as (name, value): every read applies them in its transaction, so a
  /// node whose sessions default differently (PGTZ, PGOPTIONS, a role's settings) still
  /// reads the bare date '2025-03-01' and spells a timestamptz key as the coordinator does.
  std::vector<std::pair<std::string, std::string>> session;
  table_spec spec() const;
};

/// Rows with lo <= partition column < hi (for "ctid": pages lo..hi-1).
struct partition {
  uint32_t id = 0;
  int64_t lo = 0;
  int64_t hi = 0;
};

/// Catalog lookups and the mode choice. Errors: INVALID_ARGUMENT (columns), PG_ERROR.
[[nodiscard]] caf::expected<report_plan>
make_plan(runtime::pg_connection& pg, report_def def, report_params params, read_mode mode);

/// `p` with the column types of this node's own catalog: a worker never splices types it
/// was sent (they become casts in SQL). Errors: INVALID_ARGUMENT, PG_ERROR.
[[nodiscard]] caf::expected<report_plan> local_types(runtime::pg_connection& pg,
                                                     const report_plan& p);

/// Splits the partition column's range (whole table; index endpoints, cheap) into at most
/// `n` partitions. An empty table gives none.
[[nodiscard]] caf::expected<std::vector<partition>>
plan_partitions(runtime::pg_connection& pg, const report_plan& plan, size_t n);

/// The settings a plan may carry in `session` (a peer's plan naming another is refused).
bool session_setting_allowed(const std::string& name);

/// True for a string shaped like a PostgreSQL snapshot id ("00000003-0000001B-1").
bool valid_snapshot_id(const std::string& s);

/// Starts a REPEATABLE READ READ ONLY transaction on `pg` and exports its snapshot. The
/// snapshot lives as long as that transaction: keep the connection until the report ends.
[[nodiscard]] caf::expected<std::string> export_snapshot(runtime::pg_connection& pg);

/// Maps a PostgreSQL error to the report error callers see: INVALID_ARGUMENT for data
/// exceptions (SQLSTATE class 22), CANCELLED, UNAVAILABLE (connection), else PG_ERROR.
/// The context keeps "SQLSTATE: message".
caf::error to_report_error(const caf::error& pg_err);

} // namespace wharf::actors
