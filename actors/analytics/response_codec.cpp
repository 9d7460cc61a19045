#include "actors/analytics/response_codec.hpp"

#include <variant>

#include <capnp/message.h>

#include "actors/analytics/capnp_text.hpp"
#include "actors/analytics/key_codec.hpp"
#include "actors/analytics/plan_codec.hpp"
#include "protocols/capnp_io.hpp"
#include "runtime/pg/pg_connection.hpp"

namespace wharf::actors::analytics_detail {

using protocols::message_bytes;
using namespace wharf::runtime;

void fill(rp::ReportResponse::Builder b, const response_info& x) {
  b.setReportId(text(x.id));
  b.setStatus(x.status);
  b.setErrorMessage(text(x.error));
  b.setErrorCode(text(x.code));
  b.setSqlstate(text(x.sqlstate));
  b.setModeUsed(to_wire(x.mode));
  b.setPartitions(x.partitions);
  b.setPartitionsDone(x.done);
  b.setRetries(x.retries);
  b.setRowsRead(x.rows_read);
  b.setElapsedMs(x.elapsed_ms);
  b.setTraceId(x.trace);
  b.setNode(text(x.node));
}

std::string response_bytes(const response_info& x) {
  capnp::MallocMessageBuilder mb;
  fill(mb.initRoot<rp::ReportResponse>(), x);
  return message_bytes(mb);
}

void set_error(response_info& x, const caf::error& err) {
  auto re = to_report_error(err);
  auto code = static_cast<protocols::error_code>(re.code());
  x.status = code == protocols::error_code::timeout     ? rp::ReportStatus::TIMEOUT
             : code == protocols::error_code::cancelled ? rp::ReportStatus::CANCELLED
                                              : rp::ReportStatus::FAILED;
  x.code = to_string(code);
  x.error = message_of(re);
  x.sqlstate = runtime::sqlstate_of(re);
}

std::string error_response(const std::string& id, const caf::error& err, uint64_t trace,
                           const std::string& node) {
  response_info x;
  x.id = id;
  set_error(x, err);
  x.trace = trace;
  x.node = node;
  return response_bytes(x);
}

void write_columns(capnp::List<rp::Column>::Builder out,
                   const std::vector<std::pair<std::string, std::string>>& cols) {
  for (unsigned i = 0; i < out.size(); ++i) {
    out[i].setName(text(cols[i].first));
    out[i].setType(text(cols[i].second));
  }
}

namespace {

void set_cell(rp::Value::Builder v, const cell& c) {
  if (auto* i = std::get_if<int64_t>(&c))
    v.setInt(*i);
  else if (auto* d = std::get_if<double>(&c))
    v.setFloat(*d);
  else if (auto* s = std::get_if<std::string>(&c))
    v.setText(text(*s));
  else if (auto* b = std::get_if<bool>(&c))
    v.setBool(*b);
  else
    v.setNull();
}

// Writes a group's key cells straight from their binary form (no intermediate strings).
unsigned write_key(capnp::List<rp::Value>::Builder vals, std::string_view key,
                   const std::vector<key_kind>& kinds) {
  unsigned c = 0;
  for_each_field(key, kinds, [&](const key_field& x) {
    auto v = vals[c++];
    if (x.null)
      v.setNull();
    else if (x.kind == key_kind::integer)
      v.setInt(x.i);
    else if (x.kind == key_kind::floating)
      v.setFloat(x.f);
    else if (x.kind == key_kind::boolean)
      v.setBool(x.b);
    else
      v.setText(capnp::Text::Reader(x.t.data(), x.t.size()));
  });
  return c;
}

} // namespace

void write_rows(capnp::List<rp::Row>::Builder out, const sorted_partial& p, size_t from) {
  auto na = p.spec.aggs.size();
  auto nk = p.spec.keys.size();
  for (unsigned r = 0; r < out.size(); ++r) {
    auto g = from + r;
    auto vals = out[r].initValues(static_cast<unsigned>(nk + na));
    auto c = write_key(vals, p.keys[g], p.spec.keys);
    for (size_t a = 0; a < na; ++a)
      set_cell(vals[c++], p.final_value(g, a));
  }
}

void write_page(protocols::page_writer& w, const sorted_partial& p, size_t from, size_t n) {
  auto na = p.spec.aggs.size();
  w.reserve(n);
  for (size_t g = from; g < from + n; ++g) {
    size_t c = 0;
    for_each_field(p.keys[g], p.spec.keys, [&](const key_field& x) {
      if (x.null)
        w.put_null(c);
      else if (x.kind == key_kind::integer)
        w.put_int(c, x.i);
      else if (x.kind == key_kind::floating)
        w.put_float(c, x.f);
      else if (x.kind == key_kind::boolean)
        w.put_bool(c, x.b);
      else
        w.put_text(c, x.t);
      ++c;
    });
    for (size_t a = 0; a < na; ++a, ++c) {
      auto v = p.final_value(g, a);
      if (auto* i = std::get_if<int64_t>(&v))
        w.put_int(c, *i);
      else if (auto* d = std::get_if<double>(&v))
        w.put_float(c, *d);
      else
        w.put_null(c); // aggregates are ints or floats
    }
  }
}

} // namespace wharf::actors::analytics_detail
