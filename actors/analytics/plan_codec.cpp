#include "actors/analytics/plan_codec.hpp"

#include <algorithm>

#include <capnp/message.h>

#include "actors/analytics/atoms.hpp"
#include "actors/analytics/capnp_text.hpp"
#include "protocols/capnp_io.hpp"

namespace wharf::actors {
namespace analytics_detail {

rp::ReadMode to_wire(read_mode m) {
  switch (m) {
    case read_mode::automatic: return rp::ReadMode::AUTO;
    case read_mode::pushdown: return rp::ReadMode::PUSHDOWN;
    case read_mode::pull: return rp::ReadMode::PULL;
  }
  return rp::ReadMode::AUTO;
}

read_mode from_wire(rp::ReadMode m) {
  switch (m) {
    case rp::ReadMode::PUSHDOWN: return read_mode::pushdown;
    case rp::ReadMode::PULL: return read_mode::pull;
    default: return read_mode::automatic;
  }
}

namespace {

key_kind kind_of(const std::string& s) {
  if (s == "int")
    return key_kind::integer;
  if (s == "float")
    return key_kind::floating;
  if (s == "bool")
    return key_kind::boolean;
  return key_kind::text;
}

} // namespace

// -- report plan <-> ReadTask --

void write_plan(rp::ReadTask::Builder b, const report_plan& p) {
  b.setReportId(text(p.report_id));
  auto d = b.initDef();
  d.setName(text(p.def.name));
  d.setTable(text(p.def.table));
  d.setPartitionColumn(text(p.def.partition_column));
  d.setTimeColumn(text(p.def.time_column));
  d.setUserColumn(text(p.def.user_column));
  auto gb = d.initGroupBy(static_cast<unsigned>(p.def.group_by.size()));
  for (unsigned i = 0; i < gb.size(); ++i)
    gb.set(i, text(p.def.group_by[i]));
  auto ag = d.initAggregates(static_cast<unsigned>(p.def.aggregates.size()));
  for (unsigned i = 0; i < ag.size(); ++i) {
    ag[i].setFn(static_cast<rp::AggFn>(p.def.aggregates[i].fn));
    ag[i].setColumn(text(p.def.aggregates[i].column));
    ag[i].setName(text(p.def.aggregates[i].name));
  }
  auto fc = d.initFilterColumns(static_cast<unsigned>(p.def.filter_columns.size()));
  for (unsigned i = 0; i < fc.size(); ++i)
    fc.set(i, text(p.def.filter_columns[i]));
  auto ct = d.initColumnTypes(static_cast<unsigned>(p.column_types.size()));
  unsigned i = 0;
  for (auto& [name, type] : p.column_types) {
    ct[i].setName(text(name));
    ct[i].setType(text(type));
    ++i;
  }
  auto nn = d.initNotNull(static_cast<unsigned>(p.not_null.size()));
  i = 0;
  for (auto& c : p.not_null)
    nn.set(i++, text(c));
  auto kk = d.initKeyKinds(static_cast<unsigned>(p.key_kinds.size()));
  auto kt = d.initKeyAsText(static_cast<unsigned>(p.key_as_text.size()));
  for (unsigned k = 0; k < kk.size(); ++k) {
    kk.set(k, to_string(p.key_kinds[k]));
    kt.set(k, p.key_as_text[k]);
  }
  b.setStartDate(text(p.params.start));
  b.setEndDate(text(p.params.end));
  auto ids = b.initUserIds(static_cast<unsigned>(p.params.user_ids.size()));
  for (unsigned k = 0; k < ids.size(); ++k)
    ids.set(k, p.params.user_ids[k]);
  auto fs = b.initFilters(static_cast<unsigned>(p.params.filters.size()));
  for (unsigned k = 0; k < fs.size(); ++k) {
    fs[k].setColumn(text(p.params.filters[k].first));
    fs[k].setValue(text(p.params.filters[k].second));
  }
  b.setMode(to_wire(p.mode));
  b.setSnapshot(text(p.snapshot));
  b.setPartitions(p.partitions);
  auto ss = b.initSession(static_cast<unsigned>(p.session.size()));
  for (unsigned k = 0; k < ss.size(); ++k) {
    ss[k].setName(text(p.session[k].first));
    ss[k].setValue(text(p.session[k].second));
  }
}

caf::expected<report_plan> read_plan(rp::ReadTask::Reader r) {
  report_plan p;
  p.report_id = str(r.getReportId());
  auto d = r.getDef();
  p.def.name = str(d.getName());
  p.def.table = str(d.getTable());
  p.def.partition_column = str(d.getPartitionColumn());
  p.def.time_column = str(d.getTimeColumn());
  p.def.user_column = str(d.getUserColumn());
  for (auto g : d.getGroupBy())
    p.def.group_by.push_back(str(g));
  for (auto a : d.getAggregates()) {
    auto fn = static_cast<uint16_t>(a.getFn());
    if (fn > static_cast<uint16_t>(agg_fn::count_distinct))
      return runtime::make_error(protocols::error_code::invalid_argument, "unknown aggregate function");
    p.def.aggregates.push_back({static_cast<agg_fn>(fn), str(a.getColumn()), str(a.getName())});
  }
  for (auto f : d.getFilterColumns())
    p.def.filter_columns.push_back(str(f));
  for (auto c : d.getColumnTypes())
    p.column_types[str(c.getName())] = str(c.getType());
  for (auto k : d.getKeyKinds())
    p.key_kinds.push_back(kind_of(str(k)));
  for (auto k : d.getKeyAsText())
    p.key_as_text.push_back(k);
  for (auto c : d.getNotNull())
    p.not_null.insert(str(c));
  if (p.key_kinds.size() != p.def.group_by.size() || p.key_as_text.size() != p.def.group_by.size()
      || p.def.aggregates.empty() || p.def.group_by.empty())
    return runtime::make_error(protocols::error_code::invalid_argument, "inconsistent report definition");
  p.params.start = str(r.getStartDate());
  p.params.end = str(r.getEndDate());
  for (auto id : r.getUserIds())
    p.params.user_ids.push_back(id);
  for (auto f : r.getFilters())
    p.params.filters.emplace_back(str(f.getColumn()), str(f.getValue()));
  p.mode = from_wire(r.getMode()) == read_mode::pull ? read_mode::pull : read_mode::pushdown;
  p.snapshot = str(r.getSnapshot());
  if (!p.snapshot.empty() && !valid_snapshot_id(p.snapshot))
    return runtime::make_error(protocols::error_code::invalid_argument, "malformed snapshot id");
  p.partitions = std::min<uint32_t>(r.getPartitions(), max_partitions);
  for (auto x : r.getSession()) {
    // Values are bound parameters; names are checked so a plan cannot set anything else.
    if (p.session.size() >= 8)
      return runtime::make_error(protocols::error_code::invalid_argument, "too many session settings");
    if (!session_setting_allowed(str(x.getName())))
      return runtime::make_error(protocols::error_code::invalid_argument,
                        "session setting not allowed: " + str(x.getName()));
    p.session.emplace_back(str(x.getName()), str(x.getValue()));
  }
  // A peer is trusted with the plan, but not with SQL: every column must be one the
  // definition names (identifiers are quoted anyway; values are bound).
  if (auto err = validate(p.def, p.params))
    return err;
  return p;
}

} // namespace analytics_detail

using namespace analytics_detail;
using protocols::message_bytes;

std::string encode_read_call(const report_plan& plan, const std::vector<partition>& run,
                             uint32_t deadline_ms) {
  capnp::MallocMessageBuilder mb;
  auto task = mb.initRoot<rp::WorkerCall>().initRead();
  write_plan(task, plan);
  auto set = [](auto b, const partition& p) {
    b.setId(p.id);
    b.setLo(p.lo);
    b.setHi(p.hi);
  };
  if (!run.empty())
    set(task.initPartition(), run.front());
  auto more = task.initMore(run.empty() ? 0 : static_cast<unsigned>(run.size() - 1));
  for (unsigned i = 0; i < more.size(); ++i)
    set(more[i], run[i + 1]);
  task.setDeadlineMs(deadline_ms);
  return message_bytes(mb);
}

} // namespace wharf::actors
