#pragma once
/// The answers apps get (internal to actors/analytics): a `ReportResponse` from what a
/// report's coordinator or the service knows of it, and result rows written straight from a
/// sorted partial (as response rows, or column-wise into a stored page). Pure functions.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>

#include "actors/analytics/plan.hpp"
#include "actors/analytics/sorted_partial.hpp"
#include "protocols/analytics.capnp.h"
#include "protocols/result_page.hpp"

namespace wharf::actors::analytics_detail {

namespace rp = wharf::reports;

/// What a `ReportResponse` says of a report (besides its rows).
struct response_info {
  std::string id;
  rp::ReportStatus status = rp::ReportStatus::PENDING;
  std::string error;
  std::string code;
  std::string sqlstate;
  read_mode mode = read_mode::automatic;
  uint32_t partitions = 0;
  uint32_t done = 0;
  uint32_t retries = 0;
  uint64_t rows_read = 0;
  uint64_t elapsed_ms = 0;
  uint64_t trace = 0;
  std::string node;
};

/// Writes `x` into `b`.
void fill(rp::ReportResponse::Builder b, const response_info& x);

/// `x` as an encoded `ReportResponse`.
std::string response_bytes(const response_info& x);

/// Status, code, message and SQLSTATE of a report that ended in `err`.
void set_error(response_info& x, const caf::error& err);

/// The encoded `ReportResponse` of report `id` that ended in `err`.
std::string error_response(const std::string& id, const caf::error& err, uint64_t trace,
                           const std::string& node);

/// Column names and types (see result_columns).
void write_columns(capnp::List<rp::Column>::Builder out,
                   const std::vector<std::pair<std::string, std::string>>& cols);

/// Groups [from, from + out.size()) of `p` as rows: keys, then final aggregate values.
void write_rows(capnp::List<rp::Row>::Builder out, const sorted_partial& p, size_t from);

/// Writes groups [from, from + n) of `p` column-wise: keys straight from their binary form,
/// then each aggregate's final value.
void write_page(protocols::page_writer& w, const sorted_partial& p, size_t from, size_t n);

} // namespace wharf::actors::analytics_detail
