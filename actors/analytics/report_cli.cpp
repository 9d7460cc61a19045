#include "actors/analytics/report_cli.hpp"

#include <cinttypes>
#include <cstdio>
#include <deque>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>

#include <unistd.h>

#include <capnp/ez-rpc.h>
#include <nlohmann/json.hpp>

#include "actors/analytics/atoms.hpp"
#include "actors/analytics/report_json.hpp"
#include "actors/analytics/result_writer.hpp"
#include "protocols/analytics.capnp.h"
#include "protocols/api.capnp.h"
#include "protocols/result_page.hpp"

namespace wharf::actors {

namespace {

namespace rp = wharf::reports;

class progress_bar final : public api::ProgressSink::Server {
public:
  kj::Promise<void> progress(ProgressContext ctx) override {
    auto p = ctx.getParams().getProgress();
    auto total = p.getPartitionsTotal();
    auto done = p.getPartitionsDone();
    if (total == 0)
      return kj::READY_NOW;
    constexpr int width = 30;
    int filled = static_cast<int>(width * done / total);
    std::fprintf(stderr, "\r[%.*s%.*s] %u/%u partitions, %" PRIu64 " rows read ", filled,
                 "##############################", width - filled,
                 "                              ", done, total, p.getRowsRead());
    std::fflush(stderr);
    drawn_ = true;
    return kj::READY_NOW;
  }
  ~progress_bar() {
    if (drawn_)
      std::fprintf(stderr, "\r%80s\r", "");
  }

private:
  bool drawn_ = false;
};

} // namespace

namespace {

// The usage error of `o` ("" when none).
std::string usage_error(const report_options& o) {
  if (o.connect.rfind(':') == std::string::npos)
    return "--connect wants HOST:PORT, got \"" + o.connect + "\"";
  if (!result_writer::parse_format(o.format))
    return "--format must be json, csv or table";
  if (o.mode != "auto" && o.mode != "pushdown" && o.mode != "pull")
    return "--mode must be auto, pushdown or pull";
  for (auto& f : o.filters)
    if (f.find('=') == std::string::npos || f.front() == '=')
      return "--filter wants KEY=VALUE, got \"" + f + "\"";
  return {};
}

void fill_request(rp::ReportRequest::Builder r, const report_options& o) {
  r.setReportName(o.name);
  r.setStartDate(o.start);
  r.setEndDate(o.end);
  auto ids = r.initUserIds(static_cast<unsigned>(o.users.size()));
  for (unsigned i = 0; i < ids.size(); ++i)
    ids.set(i, o.users[i]);
  auto fs = r.initFilters(static_cast<unsigned>(o.filters.size()));
  for (unsigned i = 0; i < fs.size(); ++i) {
    auto eq = o.filters[i].find('=');
    fs[i].setColumn(o.filters[i].substr(0, eq));
    fs[i].setValue(o.filters[i].substr(eq + 1));
  }
  r.setMode(o.mode == "pull"       ? rp::ReadMode::PULL
            : o.mode == "pushdown" ? rp::ReadMode::PUSHDOWN
                                   : rp::ReadMode::AUTO);
  r.setDeadlineMs(o.deadline_ms);
  r.setPartitions(o.partitions);
}

// Writes a stored result's rows, page by page. Returns the exit code (0, or 1 with the reason
// on stderr).
int page_through(api::Analytics::Client& analytics, rp::ReportResponse::Reader rr,
                 kj::WaitScope& ws, result_writer& w, const nlohmann::json& meta) {
  uint64_t offset = 0;
  bool begun = false;
  auto request = [&](uint64_t at) {
    auto fetch = analytics.fetchResultRequest();
    fetch.setRef(rr.getResultRef());
    fetch.setOffset(at);
    fetch.setLimit(analytics_detail::result_page_rows);
    return fetch.send();
  };
  // The total is known: keep a few page requests in flight, so the node reads and sends
  // the next pages while this one is written out.
  auto total = rr.getTotalRows();
  constexpr size_t window = 3;
  std::deque<decltype(request(0))> pending;
  uint64_t next_request = 0;
  auto fill = [&] {
    while (pending.size() < window && next_request < total) {
      pending.push_back(request(next_request));
      next_request += analytics_detail::result_page_rows;
    }
  };
  // CSV text is made on helper threads, a page each, and written in order: formatting
  // 100,000 rows takes longer than fetching them.
  struct formatting {
    decltype(pending.front().wait(ws)) page;
    std::unique_ptr<protocols::page_view> view;
    std::future<std::string> text;
  };
  std::deque<formatting> formats;
  auto write_oldest = [&] {
    auto& f = formats.front();
    w.write_csv(f.text.get(), f.view->rows());
    formats.pop_front();
  };
  fill();
  while (!pending.empty()) {
    auto page = pending.front().wait(ws);
    pending.pop_front();
    auto p = page.getPage();
    if (p.getErrorCode().size() > 0) {
      std::cerr << "wharf report: fetching rows at " << offset << ": "
                << p.getErrorCode().cStr() << ": " << p.getError().cStr() << "\n";
      return 1;
    }
    auto view = std::make_unique<protocols::page_view>(p);
    auto& v = *view;
    if (!v.ok()) {
      std::cerr << "wharf report: fetching rows at " << offset << ": " << v.error() << "\n";
      return 1;
    }
    if (p.getOffset() != offset || (v.rows() == 0 && offset < total)) {
      std::cerr << "wharf report: the node returned rows at " << p.getOffset()
                << " for a request at " << offset << "\n";
      return 1;
    }
    fill();
    if (!begun) {
      w.begin(p.getColumns(), meta);
      begun = true;
    }
    offset += v.rows();
    if (!w.csv()) {
      w.rows(v);
      continue;
    }
    auto* at = view.get();
    formats.push_back(formatting{std::move(page), std::move(view),
                                 std::async(std::launch::async,
                                            [at] { return result_writer::csv_text(*at); })});
    if (formats.size() > 2)
      write_oldest();
  }
  while (!formats.empty())
    write_oldest();
  if (offset != total) {
    std::cerr << "wharf report: got " << offset << " of " << total << " rows\n";
    return 1;
  }
  if (!begun)
    w.begin(rr.getColumns(), meta);
  return 0;
}

} // namespace

int run_report(const report_options& o) {
  if (auto err = usage_error(o); !err.empty()) {
    std::cerr << "wharf report: " << err << "\n";
    return 2;
  }
  auto format = *result_writer::parse_format(o.format);
  std::ofstream file;
  if (!o.out.empty()) {
    file.open(o.out, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "wharf report: cannot write " << o.out << "\n";
      return 2;
    }
  }
  std::ostream& os = o.out.empty() ? std::cout : file;
  try {
    capnp::EzRpcClient client(o.connect);
    auto& ws = client.getWaitScope();
    auto analytics = client.getMain<api::Node>().analyticsRequest().send().getAnalytics();
    auto req = analytics.generateReportRequest();
    fill_request(req.initRequest(), o);
    if (o.progress && isatty(STDERR_FILENO))
      req.setProgress(kj::heap<progress_bar>());
    auto resp = req.send().wait(ws);
    auto rr = resp.getResponse();
    if (rr.getStatus() != rp::ReportStatus::DONE) {
      std::cerr << "wharf report: " << to_string(rr.getStatus()) << ": "
                << rr.getErrorCode().cStr() << ": " << rr.getErrorMessage().cStr();
      if (rr.getSqlstate().size() > 0)
        std::cerr << " (SQLSTATE " << rr.getSqlstate().cStr() << ")";
      std::cerr << "\n";
      return 1;
    }
    result_writer w{os, format};
    auto meta = to_json(rr);
    if (rr.getResultRef().size() == 0) {
      w.begin(rr.getColumns(), meta);
      w.rows(rr.getRows());
    } else if (auto rc = page_through(analytics, rr, ws, w, meta); rc != 0) {
      return rc;
    }
    w.end();
    if (!o.quiet)
      std::cerr << "wharf report: " << w.count() << " rows in " << rr.getElapsedMs()
                << " ms (report " << rr.getReportId().cStr() << ", mode "
                << to_string(rr.getModeUsed()) << ", " << rr.getPartitions()
                << " partitions, " << rr.getRetries() << " retries, coordinator "
                << rr.getNode().cStr() << ")\n";
    return 0;
  } catch (const kj::Exception& e) {
    std::cerr << "wharf report: cannot reach " << o.connect << ": "
              << e.getDescription().cStr() << "\n";
    return 3;
  }
}

} // namespace wharf::actors
