#pragma once
/// JSON forms of the analytics contract (protocols/analytics.capnp), shared by the HTTP
/// routes (`POST /v1/reports`, `GET /v1/reports/{id}`, ...) and the `wharf report` CLI.
///
/// Request JSON: {"report": NAME (or "report_name"), "start_date", "end_date",
/// "user_ids": [int...], "filters" (or "custom_filters"): {column: value}, "mode":
/// "auto|pushdown|pull", "deadline_ms", "trace_id", "partitions", "async": bool}.
/// Response JSON: the `ReportResponse` fields in snake_case, "rows" as arrays of typed values.

#include <string>

#include <caf/expected.hpp>
#include <nlohmann/json_fwd.hpp>

#include "protocols/analytics.capnp.h"

namespace wharf::actors {

/// Encodes a request body as an `ApiCall` (generate, or submit when "async" is true).
/// Errors name the offending field.
[[nodiscard]] caf::expected<std::string> api_call_from_json(const std::string& body);

nlohmann::json to_json(reports::Value::Reader v);
nlohmann::json to_json(reports::ReportResponse::Reader r);
nlohmann::json to_json(reports::ResultPage::Reader p);
nlohmann::json to_json(reports::ReportList::Reader l);

const char* to_string(reports::ReportStatus s) noexcept; ///< "pending", "running", "done", ...
const char* to_string(reports::ReadMode m) noexcept;     ///< "auto", "pushdown", "pull"

/// The HTTP status of a report answer: 200 done, 202 pending/running, else the status of its
/// error code (protocols/error_code.hpp: 400 INVALID_ARGUMENT, 404 NOT_FOUND, 409 CANCELLED,
/// 502 PG_ERROR, 503 UNAVAILABLE or RESOURCE_EXHAUSTED, 504 TIMEOUT, 500 otherwise).
unsigned http_status(reports::ReportResponse::Reader r);

} // namespace wharf::actors
