#pragma once
/// A report as one SQL statement, and the final rows and columns of an answer: the ground
/// truth tests and benchmarks compare the distributed answer with, and the shape of that
/// answer. `single_sql` blocks: call it from a CLI, a test or a detached actor.

#include <string>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

#include "actors/analytics/key_codec.hpp"
#include "actors/analytics/plan.hpp"
#include "actors/analytics/sorted_partial.hpp"

namespace wharf::runtime {
class pg_connection;
} // namespace wharf::runtime

namespace wharf::actors {

/// The whole report as one SQL statement (the ground truth of tests and benchmarks), into a
/// table whose final values equal the distributed answer.
[[nodiscard]] caf::expected<std::vector<std::vector<cell>>>
single_sql(runtime::pg_connection& pg, const report_plan& plan);

/// Final rows of a partial (keys then aggregates), in its (key) order.
std::vector<std::vector<cell>> final_rows(const sorted_partial& p);

/// Result column names and types ("int", "float", "text", "bool").
std::vector<std::pair<std::string, std::string>> result_columns(const report_plan& plan);

} // namespace wharf::actors
