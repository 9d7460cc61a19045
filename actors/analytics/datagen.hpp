#pragma once
/// Deterministic test data for the analytics reports (issue 3): the `user_events` table
/// `(id bigint primary key, user_id bigint, event_type text, event_timestamp timestamp,
/// value double precision)`, loaded with binary COPY inside one transaction, the primary key
/// added after the load. Row `id` is a pure function of (seed, id): the same options give the
/// same table. Users are uniform over 1..users, 8 event types, timestamps uniform over
/// 2025-01-01..2025-12-31 and independent of id (so id ranges do not prune by time), values
/// uniform in [0, 1000). Blocking libpq I/O: call from a CLI or a detached actor.

#include <cstdint>
#include <functional>
#include <string>

#include <caf/expected.hpp>

namespace wharf::runtime {
class pg_connection;
} // namespace wharf::runtime

namespace wharf::actors {

struct datagen_options {
  std::string table = "user_events"; ///< may be schema-qualified ("s.user_events")
  uint64_t rows = 1'000'000;
  uint64_t users = 100'000;
  uint64_t seed = 1;
  bool replace = false; ///< drop an existing table; otherwise an existing table is an error
};

struct datagen_result {
  uint64_t rows = 0;
  double seconds = 0;
};

/// The eight event types, in the order the generator draws them.
const char* const* event_types() noexcept;
constexpr size_t event_type_count = 8;

/// Validates `opts` (rows >= 0, users >= 1) and loads the table. `progress(rows_so_far)` is
/// called every 1 MiB of COPY data. Errors: `pg_errc` from the server (with SQLSTATE), or
/// `runtime_errc::bad_request` for bad options or an existing table without `replace`.
[[nodiscard]] caf::expected<datagen_result>
generate_user_events(runtime::pg_connection& pg, const datagen_options& opts,
                     const std::function<void(uint64_t)>& progress = {});

/// `wharf datagen DATASET`: loads `dataset` ("user_events") over `dsn` (else $WHARF_PG_DSN),
/// with a row count on a terminal and one summary line. Returns the exit code: 0 loaded,
/// 1 failed, 2 usage (unknown dataset, no database, bad options).
int run_datagen(const std::string& dataset, std::string dsn, const datagen_options& opts);

} // namespace wharf::actors
