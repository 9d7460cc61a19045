#include "report_cmd.hpp"

#include <charconv>
#include <cinttypes>
#include <deque>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>

#include <unistd.h>

#include <capnp/ez-rpc.h>
#include <nlohmann/json.hpp>

#include "protocols/analytics.capnp.h"
#include "protocols/api.capnp.h"
#include "protocols/result_page.hpp"
#include "runtime/rpc/report_json.hpp"

namespace wharf::cli {

namespace {

namespace rp = wharf::reports;

constexpr uint32_t page_limit = 100000; // the node stores pages of this size

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

// One result value, from an inline row or a column-wise page.
struct cell_ref {
  protocols::value_kind kind = protocols::value_kind::null;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string_view t;
};

cell_ref cell_of(rp::Value::Reader v) {
  cell_ref c;
  switch (v.which()) {
    case rp::Value::NULL_: break;
    case rp::Value::INT: c.kind = protocols::value_kind::integer; c.i = v.getInt(); break;
    case rp::Value::FLOAT: c.kind = protocols::value_kind::floating; c.f = v.getFloat(); break;
    case rp::Value::BOOL: c.kind = protocols::value_kind::boolean; c.b = v.getBool(); break;
    case rp::Value::TEXT:
      c.kind = protocols::value_kind::text;
      c.t = std::string_view(v.getText().cStr(), v.getText().size());
      break;
  }
  return c;
}

cell_ref cell_of(const protocols::page_view& v, size_t col, size_t row) {
  cell_ref c;
  c.kind = v.kind(col, row);
  switch (c.kind) {
    case protocols::value_kind::null: break;
    case protocols::value_kind::integer: c.i = v.int_at(col, row); break;
    case protocols::value_kind::floating: c.f = v.float_at(col, row); break;
    case protocols::value_kind::boolean: c.b = v.bool_at(col, row); break;
    case protocols::value_kind::text: c.t = v.text_at(col, row); break;
  }
  return c;
}

// Appends one CSV field: numbers in their shortest exact form, text quoted when needed.
void append_csv(std::string& out, const cell_ref& v) {
  char buf[64];
  switch (v.kind) {
    case protocols::value_kind::null: return;
    case protocols::value_kind::integer: {
      auto r = std::to_chars(buf, buf + sizeof(buf), v.i);
      out.append(buf, r.ptr);
      return;
    }
    case protocols::value_kind::floating: {
      // Shortest text that reads back as the same double.
      auto r = std::to_chars(buf, buf + sizeof(buf), v.f);
      out.append(buf, r.ptr);
      return;
    }
    case protocols::value_kind::boolean: out += v.b ? "true" : "false"; return;
    case protocols::value_kind::text: {
      auto s = v.t;
      if (!s.empty() && s.find_first_of(",\"\n\r") == std::string_view::npos) {
        out.append(s);
        return;
      }
      out += '"';
      for (char c : s) {
        if (c == '"')
          out += '"';
        out += c;
      }
      out += '"';
      return;
    }
  }
}

std::string table_field(const cell_ref& v) {
  if (v.kind == protocols::value_kind::null)
    return "NULL";
  if (v.kind == protocols::value_kind::text)
    return std::string(v.t);
  std::string out;
  append_csv(out, v);
  return out;
}

nlohmann::json json_of(const cell_ref& v) {
  switch (v.kind) {
    case protocols::value_kind::null: return nullptr;
    case protocols::value_kind::integer: return v.i;
    case protocols::value_kind::floating: return v.f;
    case protocols::value_kind::boolean: return v.b;
    case protocols::value_kind::text: return std::string(v.t);
  }
  return nullptr;
}

// Streams rows in the chosen format.
class writer {
public:
  writer(std::ostream& os, std::string format) : os_(os), format_(std::move(format)) {}

  void begin(capnp::List<rp::Column>::Reader cols, const nlohmann::json& meta) {
    for (auto c : cols)
      names_.emplace_back(c.getName().cStr());
    if (format_ == "csv") {
      for (size_t i = 0; i < names_.size(); ++i)
        os_ << (i ? "," : "") << names_[i];
      os_ << '\n';
    } else if (format_ == "json") {
      auto m = meta;
      m.erase("rows");
      auto head = m.dump();
      head.pop_back(); // the closing brace: rows follow
      os_ << head << ",\"rows\":[";
    }
  }

  /// Inline rows of a response.
  void rows(capnp::List<rp::Row>::Reader rows) {
    for (auto r : rows) {
      auto vals = r.getValues();
      row(vals.size(), [&](size_t c) { return cell_of(vals[static_cast<unsigned>(c)]); });
    }
  }

  /// The rows of a checked page.
  void rows(const protocols::page_view& v) {
    for (size_t r = 0; r < v.rows(); ++r)
      row(v.columns(), [&](size_t c) { return cell_of(v, c, r); });
  }

  void end() {
    if (!buf_.empty()) {
      os_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
      buf_.clear();
    }
    if (format_ == "json") {
      os_ << "\n]}\n";
    } else if (format_ == "table") {
      std::vector<size_t> w(names_.size());
      for (size_t i = 0; i < names_.size(); ++i)
        w[i] = names_[i].size();
      for (auto& r : table_)
        for (size_t i = 0; i < r.size() && i < w.size(); ++i)
          w[i] = std::max(w[i], r[i].size());
      auto line = [&](const std::vector<std::string>& cells) {
        for (size_t i = 0; i < cells.size() && i < w.size(); ++i)
          os_ << (i ? "  " : "") << cells[i] << std::string(w[i] - cells[i].size(), ' ');
        os_ << '\n';
      };
      line(names_);
      std::vector<std::string> rule;
      for (auto x : w)
        rule.push_back(std::string(x, '-'));
      line(rule);
      for (auto& r : table_)
        line(r);
    }
    os_.flush();
  }

  uint64_t count() const { return count_; }

  bool csv() const { return format_ == "csv"; }

  /// CSV only: a checked page's rows as CSV text. Reads nothing but `v`, so it can run on
  /// another thread while this writer writes the previous page.
  static std::string csv_text(const protocols::page_view& v) {
    std::string out;
    out.reserve(v.rows() * 48);
    for (size_t r = 0; r < v.rows(); ++r)
      csv_row(out, v.columns(), [&](size_t c) { return cell_of(v, c, r); });
    return out;
  }

  /// Writes rows made by csv_text.
  void write_csv(const std::string& text, size_t rows) {
    if (!buf_.empty()) {
      os_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
      buf_.clear();
    }
    os_.write(text.data(), static_cast<std::streamsize>(text.size()));
    count_ += rows;
  }

private:
  template <class Cell>
  static void csv_row(std::string& out, size_t n, Cell cell) {
    for (size_t c = 0; c < n; ++c) {
      if (c)
        out += ',';
      append_csv(out, cell(c));
    }
    out += '\n';
  }

  template <class Cell>
  void row(size_t n, Cell cell) {
    if (format_ == "csv") {
      csv_row(buf_, n, cell);
      if (buf_.size() >= (1u << 20)) {
        os_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
        buf_.clear();
      }
    } else if (format_ == "json") {
      nlohmann::json out = nlohmann::json::array();
      for (size_t c = 0; c < n; ++c)
        out.push_back(json_of(cell(c)));
      os_ << (count_ ? "," : "") << "\n" << out.dump();
    } else {
      std::vector<std::string> cells;
      for (size_t c = 0; c < n; ++c)
        cells.push_back(table_field(cell(c)));
      table_.push_back(std::move(cells));
    }
    ++count_;
  }

  std::ostream& os_;
  std::string format_;
  std::vector<std::string> names_;
  std::vector<std::vector<std::string>> table_;
  std::string buf_; // csv output, written in 1 MB pieces
  uint64_t count_ = 0;
};

} // namespace

int run_report(const report_options& o) {
  auto colon = o.connect.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "wharf report: --connect wants HOST:PORT, got \"" << o.connect << "\"\n";
    return 2;
  }
  if (o.format != "json" && o.format != "csv" && o.format != "table") {
    std::cerr << "wharf report: --format must be json, csv or table\n";
    return 2;
  }
  if (o.mode != "auto" && o.mode != "pushdown" && o.mode != "pull") {
    std::cerr << "wharf report: --mode must be auto, pushdown or pull\n";
    return 2;
  }
  for (auto& f : o.filters)
    if (f.find('=') == std::string::npos || f.front() == '=') {
      std::cerr << "wharf report: --filter wants KEY=VALUE, got \"" << f << "\"\n";
      return 2;
    }
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
    auto r = req.initRequest();
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
    if (o.progress && isatty(STDERR_FILENO))
      req.setProgress(kj::heap<progress_bar>());
    auto resp = req.send().wait(ws);
    auto rr = resp.getResponse();
    if (rr.getStatus() != rp::ReportStatus::DONE) {
      std::cerr << "wharf report: " << runtime::to_string(rr.getStatus()) << ": "
                << rr.getErrorCode().cStr() << ": " << rr.getErrorMessage().cStr();
      if (rr.getSqlstate().size() > 0)
        std::cerr << " (SQLSTATE " << rr.getSqlstate().cStr() << ")";
      std::cerr << "\n";
      return 1;
    }
    writer w{os, o.format};
    auto meta = runtime::to_json(rr);
    if (rr.getResultRef().size() == 0) {
      w.begin(rr.getColumns(), meta);
      w.rows(rr.getRows());
    } else {
      uint64_t offset = 0;
      bool begun = false;
      auto request = [&](uint64_t at) {
        auto fetch = analytics.fetchResultRequest();
        fetch.setRef(rr.getResultRef());
        fetch.setOffset(at);
        fetch.setLimit(page_limit);
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
          next_request += page_limit;
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
                                                [at] { return writer::csv_text(*at); })});
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
    }
    w.end();
    if (!o.quiet)
      std::cerr << "wharf report: " << w.count() << " rows in " << rr.getElapsedMs()
                << " ms (report " << rr.getReportId().cStr() << ", mode "
                << runtime::to_string(rr.getModeUsed()) << ", " << rr.getPartitions()
                << " partitions, " << rr.getRetries() << " retries, coordinator "
                << rr.getNode().cStr() << ")\n";
    return 0;
  } catch (const kj::Exception& e) {
    std::cerr << "wharf report: cannot reach " << o.connect << ": "
              << e.getDescription().cStr() << "\n";
    return 3;
  }
}

} // namespace wharf::cli
