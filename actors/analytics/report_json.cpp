#include "actors/analytics/report_json.hpp"

#include <set>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <nlohmann/json.hpp>

#include "actors/analytics/atoms.hpp"
#include "actors/analytics/report_def.hpp"
#include "protocols/capnp_io.hpp"
#include "protocols/error_code.hpp"
#include "protocols/result_page.hpp"
#include "runtime/core/types.hpp"

namespace wharf::actors {

using nlohmann::json;

const char* to_string(reports::ReportStatus s) noexcept {
  switch (s) {
    case reports::ReportStatus::PENDING: return "pending";
    case reports::ReportStatus::RUNNING: return "running";
    case reports::ReportStatus::DONE: return "done";
    case reports::ReportStatus::FAILED: return "failed";
    case reports::ReportStatus::TIMEOUT: return "timeout";
    case reports::ReportStatus::CANCELLED: return "cancelled";
  }
  return "failed";
}

const char* to_string(reports::ReadMode m) noexcept {
  switch (m) {
    case reports::ReadMode::AUTO: return "auto";
    case reports::ReadMode::PUSHDOWN: return "pushdown";
    case reports::ReadMode::PULL: return "pull";
  }
  return "auto";
}

namespace {

caf::error bad(const std::string& why) {
  return runtime::make_error(protocols::error_code::invalid_argument, why);
}

std::string text_of(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

} // namespace

caf::expected<std::string> api_call_from_json(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    return bad(std::string("request body is not JSON: ") + e.what());
  }
  if (!j.is_object())
    return bad("request body must be a JSON object");
  static const std::set<std::string> known{"report",     "report_name", "start_date",
                                           "end_date",   "user_ids",    "filters",
                                           "custom_filters", "mode",    "deadline_ms",
                                           "trace_id",   "partitions",  "async"};
  for (auto& [k, v] : j.items())
    if (!known.count(k))
      return bad("unknown field \"" + k.substr(0, 64) + "\"");
  capnp::MallocMessageBuilder mb;
  auto call = mb.initRoot<reports::ApiCall>();
  bool async = j.contains("async") && j["async"].is_boolean() && j["async"].get<bool>();
  auto req = async ? call.initSubmit() : call.initGenerate();
  auto str_field = [&](const char* a, const char* b, auto set) -> caf::error {
    const char* key = j.contains(a) ? a : (b && j.contains(b) ? b : nullptr);
    if (!key)
      return caf::none;
    if (!j[key].is_string())
      return bad(std::string("\"") + key + "\" must be a string");
    set(j[key].get<std::string>());
    return caf::none;
  };
  std::string name, start, end, mode = "auto";
  if (auto err = str_field("report", "report_name", [&](std::string s) { name = s; }))
    return err;
  if (name.empty())
    return bad("\"report\" is required");
  if (auto err = str_field("start_date", nullptr, [&](std::string s) { start = s; }))
    return err;
  if (auto err = str_field("end_date", nullptr, [&](std::string s) { end = s; }))
    return err;
  if (auto err = str_field("mode", nullptr, [&](std::string s) { mode = s; }))
    return err;
  req.setReportName(name);
  req.setStartDate(start);
  req.setEndDate(end);
  if (mode == "auto")
    req.setMode(reports::ReadMode::AUTO);
  else if (mode == "pushdown")
    req.setMode(reports::ReadMode::PUSHDOWN);
  else if (mode == "pull")
    req.setMode(reports::ReadMode::PULL);
  else
    return bad("\"mode\" must be auto, pushdown or pull");
  if (j.contains("user_ids")) {
    auto& ids = j["user_ids"];
    if (!ids.is_array() || ids.size() > max_user_ids)
      return bad("\"user_ids\" must be an array of at most " + std::to_string(max_user_ids)
                 + " integers");
    auto out = req.initUserIds(static_cast<unsigned>(ids.size()));
    for (unsigned i = 0; i < ids.size(); ++i) {
      if (!ids[i].is_number_integer())
        return bad("\"user_ids\" must hold integers");
      out.set(i, ids[i].get<int64_t>());
    }
  }
  const char* fkey = j.contains("filters") ? "filters"
                     : j.contains("custom_filters") ? "custom_filters" : nullptr;
  if (fkey) {
    auto& fs = j[fkey];
    if (!fs.is_object() || fs.size() > 64)
      return bad(std::string("\"") + fkey + "\" must be an object of at most 64 column: value");
    auto out = req.initFilters(static_cast<unsigned>(fs.size()));
    unsigned i = 0;
    for (auto& [k, v] : fs.items()) {
      out[i].setColumn(k);
      if (v.is_string())
        out[i].setValue(v.get<std::string>());
      else if (v.is_number() || v.is_boolean())
        out[i].setValue(v.dump());
      else
        return bad(std::string("filter \"") + k.substr(0, 64) + "\" must be a string or number");
      ++i;
    }
  }
  auto uint_field = [&](const char* key, uint64_t max, auto set) -> caf::error {
    if (!j.contains(key))
      return caf::none;
    if (!j[key].is_number_unsigned() || j[key].get<uint64_t>() > max)
      return bad(std::string("\"") + key + "\" must be an integer 0.." + std::to_string(max));
    set(j[key].get<uint64_t>());
    return caf::none;
  };
  if (auto err = uint_field("deadline_ms", 86400000,
                            [&](uint64_t v) { req.setDeadlineMs(static_cast<uint32_t>(v)); }))
    return err;
  if (auto err = uint_field("trace_id", UINT64_MAX, [&](uint64_t v) { req.setTraceId(v); }))
    return err;
  if (auto err = uint_field("partitions", analytics_detail::max_partitions,
                            [&](uint64_t v) { req.setPartitions(static_cast<uint32_t>(v)); }))
    return err;
  return protocols::message_bytes(mb);
}

json to_json(reports::Value::Reader v) {
  switch (v.which()) {
    case reports::Value::NULL_: return nullptr;
    case reports::Value::INT: return v.getInt();
    case reports::Value::FLOAT: return v.getFloat();
    case reports::Value::TEXT: return text_of(v.getText());
    case reports::Value::BOOL: return v.getBool();
  }
  return nullptr;
}

namespace {

json columns_json(capnp::List<reports::Column>::Reader cols) {
  json out = json::array();
  for (auto c : cols)
    out.push_back({{"name", text_of(c.getName())}, {"type", text_of(c.getType())}});
  return out;
}

json rows_json(capnp::List<reports::Row>::Reader rows) {
  json out = json::array();
  for (auto r : rows) {
    json row = json::array();
    for (auto v : r.getValues())
      row.push_back(to_json(v));
    out.push_back(std::move(row));
  }
  return out;
}

json page_rows_json(const protocols::page_view& v) {
  json out = json::array();
  for (size_t r = 0; r < v.rows(); ++r) {
    json row = json::array();
    for (size_t c = 0; c < v.columns(); ++c) {
      switch (v.kind(c, r)) {
        case protocols::value_kind::null: row.push_back(nullptr); break;
        case protocols::value_kind::integer: row.push_back(v.int_at(c, r)); break;
        case protocols::value_kind::floating: row.push_back(v.float_at(c, r)); break;
        case protocols::value_kind::boolean: row.push_back(v.bool_at(c, r)); break;
        case protocols::value_kind::text: row.push_back(std::string(v.text_at(c, r))); break;
      }
    }
    out.push_back(std::move(row));
  }
  return out;
}

} // namespace

json to_json(reports::ReportResponse::Reader r) {
  json j;
  j["report_id"] = text_of(r.getReportId());
  j["status"] = to_string(r.getStatus());
  if (r.getErrorCode().size() > 0) {
    j["error_code"] = text_of(r.getErrorCode());
    j["error_message"] = text_of(r.getErrorMessage());
    if (r.getSqlstate().size() > 0)
      j["sqlstate"] = text_of(r.getSqlstate());
  }
  if (r.getStatus() == reports::ReportStatus::DONE) {
    j["columns"] = columns_json(r.getColumns());
    if (r.getResultRef().size() > 0)
      j["result_ref"] = text_of(r.getResultRef());
    else
      j["rows"] = rows_json(r.getRows());
    j["total_rows"] = r.getTotalRows();
  }
  j["mode"] = to_string(r.getModeUsed());
  j["partitions"] = r.getPartitions();
  j["partitions_done"] = r.getPartitionsDone();
  j["retries"] = r.getRetries();
  j["rows_read"] = r.getRowsRead();
  j["elapsed_ms"] = r.getElapsedMs();
  j["trace_id"] = r.getTraceId();
  j["node"] = text_of(r.getNode());
  return j;
}

json to_json(reports::ResultPage::Reader p) {
  json j;
  if (p.getErrorCode().size() > 0) {
    j["error_code"] = text_of(p.getErrorCode());
    j["error_message"] = text_of(p.getError());
    return j;
  }
  protocols::page_view v{p};
  if (!v.ok()) {
    j["error_code"] = "INTERNAL";
    j["error_message"] = v.error();
    return j;
  }
  j["columns"] = columns_json(p.getColumns());
  j["rows"] = page_rows_json(v);
  j["offset"] = p.getOffset();
  j["total_rows"] = p.getTotalRows();
  return j;
}

json to_json(reports::ReportList::Reader l) {
  json j;
  j["node"] = text_of(l.getNode());
  if (l.getErrorCode().size() > 0) {
    j["error_code"] = text_of(l.getErrorCode());
    j["error_message"] = text_of(l.getError());
    return j;
  }
  json rows = json::array();
  for (auto r : l.getReports()) {
    json x{{"report_id", text_of(r.getReportId())},
           {"name", text_of(r.getName())},
           {"status", to_string(r.getStatus())},
           {"mode", to_string(r.getMode())},
           {"partitions", r.getPartitions()},
           {"partitions_done", r.getPartitionsDone()},
           {"rows_read", r.getRowsRead()},
           {"elapsed_ms", r.getElapsedMs()},
           {"coordinator", text_of(r.getCoordinator())}};
    if (r.getErrorCode().size() > 0)
      x["error_code"] = text_of(r.getErrorCode());
    rows.push_back(std::move(x));
  }
  j["reports"] = std::move(rows);
  return j;
}

unsigned http_status(reports::ReportResponse::Reader r) {
  switch (r.getStatus()) {
    case reports::ReportStatus::DONE: return 200;
    case reports::ReportStatus::PENDING:
    case reports::ReportStatus::RUNNING: return 202;
    default: break;
  }
  auto code = protocols::parse_error_code(text_of(r.getErrorCode()));
  return protocols::http_status(code == protocols::error_code::none ? protocols::error_code::internal
                                                                    : code);
}

} // namespace wharf::actors
