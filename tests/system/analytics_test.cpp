// Analytics system tests (issue 3): real wharf-node clusters (3 nodes; 5 in one case) on
// loopback over the PostgreSQL of WHARF_PG_DSN. Each case loads its own tables (wharf_test_<pid>_<tag>),
// writes a node config whose `[[reports]]` read them, starts its own cluster, and compares
// what POST /v1/reports and `wharf report` answer with the same report run as one SQL
// statement written here (independent of actors/analytics). Waits are bounded polls on an
// observable condition, never fixed sleeps. Failure messages name the phase, the request and
// expected versus actual values, and carry the node logs.
#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "actors/analytics/datagen.hpp"
#include "protocols/messages.hpp"
#include "runtime/pg/pg_connection.hpp"
#include "runtime/rpc/admin_client.hpp"
#include "tests/support/expect.hpp"
#include "tests/support/node_process.hpp"
#include "tests/support/pg_test.hpp"
#include "tests/support/temp_dir.hpp"

using namespace wharf;
using namespace std::chrono_literals;
using json = nlohmann::json;
using test::eventually;
using test::node_process;

namespace {

// -- rows --

/// A row of a report shaped like user_behavior_report: keys (user_id, event_type), then
/// avg(value) AS avg_value and count(id) AS event_count. SQL NULL is nullopt.
struct ub_row {
  int64_t user_id = 0;
  std::optional<std::string> event_type;
  std::optional<double> avg_value;
  int64_t event_count = 0;
};

std::string show(const ub_row& r) {
  std::ostringstream os;
  os.precision(17);
  os << "(" << r.user_id << ", " << (r.event_type ? "'" + *r.event_type + "'" : "NULL") << ", ";
  if (r.avg_value)
    os << *r.avg_value;
  else
    os << "NULL";
  os << ", " << r.event_count << ")";
  return os.str();
}

// The report's key order: user_id, then event_type with NULL last (as ORDER BY).
bool key_less(const ub_row& a, const ub_row& b) {
  if (a.user_id != b.user_id)
    return a.user_id < b.user_id;
  if (a.event_type.has_value() != b.event_type.has_value())
    return a.event_type.has_value();
  return a.event_type.has_value() && *a.event_type < *b.event_type;
}

bool floats_close(double a, double b) {
  return a == b || std::abs(a - b) <= 1e-9 * std::max(std::abs(a), std::abs(b));
}

/// "" when `got` equals `want` as sorted rows (averages within 1e-9 relative: partial sums
/// add up in another order), else the first difference.
std::string diff(std::vector<ub_row> want, std::vector<ub_row> got) {
  std::sort(want.begin(), want.end(), key_less);
  std::sort(got.begin(), got.end(), key_less);
  for (size_t i = 0; i < std::min(want.size(), got.size()); ++i) {
    auto& w = want[i];
    auto& g = got[i];
    bool same = w.user_id == g.user_id && w.event_type == g.event_type
                && w.event_count == g.event_count
                && w.avg_value.has_value() == g.avg_value.has_value()
                && (!w.avg_value || floats_close(*w.avg_value, *g.avg_value));
    if (!same)
      return "sorted row " + std::to_string(i) + ": expected " + show(w) + ", got " + show(g)
             + " (" + std::to_string(want.size()) + " rows expected, " + std::to_string(got.size())
             + " got)";
  }
  if (want.size() != got.size())
    return "expected " + std::to_string(want.size()) + " rows, got " + std::to_string(got.size())
           + "; first extra: " + show(want.size() > got.size() ? want[got.size()] : got[want.size()]);
  return "";
}

// -- requests and answers --

struct report_request {
  std::string report;
  std::string start = "2025-01-01";
  std::string end = "2025-12-31 23:59:59";
  std::vector<int64_t> users;
  std::vector<std::pair<std::string, std::string>> filters;
  std::string mode = "auto";
  uint32_t partitions = 0;
  uint32_t deadline_ms = 0;
  bool async = false;

  json body() const {
    json j{{"report", report}, {"start_date", start}, {"end_date", end}, {"mode", mode}};
    if (!users.empty())
      j["user_ids"] = users;
    if (!filters.empty()) {
      j["filters"] = json::object();
      for (auto& [k, v] : filters)
        j["filters"][k] = v;
    }
    if (partitions)
      j["partitions"] = partitions;
    if (deadline_ms)
      j["deadline_ms"] = deadline_ms;
    if (async)
      j["async"] = true;
    return j;
  }
};

struct http_answer {
  int status = 0;
  std::string raw;
  json body; ///< discarded when the response is not JSON

  std::string str(const char* key) const {
    return body.is_object() && body.contains(key) && body[key].is_string()
             ? body[key].get<std::string>()
             : std::string{};
  }
  uint64_t num(const char* key) const {
    return body.is_object() && body.contains(key) && body[key].is_number_unsigned()
             ? body[key].get<uint64_t>()
             : 0;
  }
  /// The answer without its rows, for messages.
  std::string brief() const {
    if (!body.is_object())
      return "HTTP " + std::to_string(status) + " " + raw.substr(0, 300);
    auto b = body;
    if (b.contains("rows"))
      b["rows"] = std::to_string(b["rows"].size()) + " rows";
    return "HTTP " + std::to_string(status) + " " + b.dump();
  }
};

struct cli_answer {
  int rc = -1;
  std::string output; ///< stdout and stderr (rows go to a file)
  std::vector<ub_row> rows;
};

// Splits one CSV line as `wharf report --format csv` writes it; a quoted empty field is "",
// an unquoted one is NULL.
std::vector<std::optional<std::string>> csv_fields(const std::string& line) {
  std::vector<std::optional<std::string>> out;
  size_t i = 0;
  while (true) {
    if (i < line.size() && line[i] == '"') {
      std::string v;
      ++i;
      while (i < line.size()) {
        if (line[i] == '"' && i + 1 < line.size() && line[i + 1] == '"') {
          v += '"';
          i += 2;
        } else if (line[i] == '"') {
          ++i;
          break;
        } else {
          v += line[i++];
        }
      }
      out.emplace_back(v);
    } else {
      auto comma = line.find(',', i);
      auto v = line.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
      out.emplace_back(v.empty() ? std::nullopt : std::optional<std::string>{v});
      i = comma == std::string::npos ? line.size() : comma;
    }
    if (i >= line.size())
      break;
    ++i; // the comma
  }
  return out;
}

std::string sql_table(const std::string& t) {
  return runtime::pg_connection::quote_identifier(t);
}

// -- the fixture: tables, a cluster reading them, and ways to ask it --

class analytics_fixture {
public:
  analytics_fixture() : pg(test::connect_test_pg()) {
    if (pg)
      exec("SET lock_timeout = '20s'");
  }

  ~analytics_fixture() {
    nodes.clear(); // SIGKILL first: a running report must not hold the tables we drop
    if (!pg)
      return;
    for (auto i = cleanup_.rbegin(); i != cleanup_.rend(); ++i) {
      auto r = pg->query(*i);
      if (!r)
        BOOST_TEST_MESSAGE("cleanup: " << *i << ": " << test::why(r));
    }
  }

  /// A fresh table name for this process, dropped at the end.
  std::string table(const std::string& tag) {
    auto t = "wharf_test_" + std::to_string(::getpid()) + "_" + tag;
    cleanup_.push_back("DROP TABLE IF EXISTS " + sql_table(t) + " CASCADE");
    return t;
  }

  void cleanup(std::string sql) { cleanup_.push_back(std::move(sql)); }

  /// Loads `rows` generated user events (the generator's promised shape) into `t`.
  void load(const std::string& t, uint64_t rows, uint64_t users, uint64_t seed) {
    actors::datagen_options o;
    o.table = t;
    o.rows = rows;
    o.users = users;
    o.seed = seed;
    o.replace = true;
    auto r = actors::generate_user_events(*pg, o);
    BOOST_REQUIRE_MESSAGE(r, "phase: loading " << rows << " rows into " << t << ": " << test::why(r));
    exec("ANALYZE " + sql_table(t)); // so that mode auto has statistics to go by
  }

  void exec(const std::string& sql, const std::vector<std::string>& params = {}) {
    auto r = pg->query(sql, params);
    BOOST_REQUIRE_MESSAGE(r, "phase: setup SQL " << sql << ": " << test::why(r));
  }

  std::string scalar(const std::string& sql, const std::vector<std::string>& params = {}) {
    auto r = pg->query(sql, params);
    BOOST_REQUIRE_MESSAGE(r, sql << ": " << test::why(r));
    BOOST_REQUIRE(!r->rows.empty() && !r->rows[0].empty());
    return r->rows[0][0].value_or("NULL");
  }

  int64_t count(const std::string& t) {
    return std::stoll(scalar("SELECT count(*) FROM " + sql_table(t)));
  }

  /// Statements of pool sessions (application_name 'wharf') running on `t` right now.
  int64_t active_on(const std::string& t) {
    return std::stoll(scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                             "'wharf' AND state = 'active' AND pid <> pg_backend_pid() AND "
                             "position($1 in query) > 0",
                             {t}));
  }

  /// Adds a `[[reports]]` entry shaped like user_behavior_report over `t`.
  void define(const std::string& name, const std::string& t) { reports_.emplace_back(name, t); }

  /// Writes the node config and starts `n` nodes (n1 seeds itself) in a fresh directory;
  /// returns once every node serves HTTP and sees every other one alive. `extra_toml` goes
  /// first in the config (e.g. a `[cluster]` section).
  void start(size_t n = 3, const std::string& extra_toml = "") {
    nodes.clear();
    auto base = dir.str() + "/cluster" + std::to_string(++clusters_);
    std::filesystem::create_directories(base);
    extra_toml_ = extra_toml;
    auto write_config = [this](const std::string& config, const std::string& dsn) {
      std::ofstream f{config};
      f << extra_toml_ << "[analytics]\ndsn = " << toml_string(dsn)
        << "\nreaders = 2\nlarge_result_rows = " << large_result_rows
        << "\ndefault_deadline_ms = 15000\nmax_attempts = 3\n" << analytics_toml;
      for (auto& [name, t] : reports_)
        f << "\n[[reports]]\nname = " << toml_string(name) << "\ntable = " << toml_string(t)
          << "\npartition_column = \"id\"\ntime_column = \"event_timestamp\"\n"
          << "user_column = \"user_id\"\nfilter_columns = [\"event_type\", \"user_id\"]\n"
          << "group_by = [\"user_id\", \"event_type\"]\n"
          << "aggregates = [\"avg(value) AS avg_value\", \"count(id) AS event_count\"]\n";
    };
    auto config = base + "/node.toml";
    write_config(config, std::getenv("WHARF_PG_DSN"));
    rewrite_config_ = [write_config, config] { write_config(config, std::getenv("WHARF_PG_DSN")); };
    config_ = config;
    for (size_t i = 1; i <= n; ++i) {
      uint16_t seed = nodes.empty() ? 0 : nodes[0]->port().cluster;
      nodes.push_back(std::make_unique<node_process>("n" + std::to_string(i), base + "/data",
                                                     base, seed));
      auto own = dsn_of.find(i);
      if (own == dsn_of.end()) {
        nodes.back()->start({"--config", config});
      } else {
        auto mine = base + "/node" + std::to_string(i) + ".toml";
        write_config(mine, own->second);
        nodes.back()->start({"--config", mine});
      }
    }
    BOOST_REQUIRE_MESSAGE(eventually([&] { return all_alive_everywhere(); }),
                          "phase: forming a " << n << "-node cluster\n" << logs());
  }

  node_process& node(size_t i) { return *nodes.at(i - 1); }

  static std::string toml_quote(const std::string& s) { return toml_string(s); }

  /// Stops node `i` with SIGTERM and starts it again (same data directory) on the config as
  /// written now (after a change to `analytics_toml`); returns once it serves HTTP again.
  /// For clusters whose nodes all use the shared config.
  void restart(size_t i) {
    node(i).signal(SIGTERM);
    BOOST_REQUIRE_MESSAGE(node(i).wait() == 0, "phase: SIGTERM of n" << i << "\n" << logs());
    rewrite_config_();
    node(i).start({"--config", config_});
    BOOST_REQUIRE_MESSAGE(eventually([&] { return test::http_get(node(i).port().http, "/health") == 200; }),
                          "phase: n" << i << " after its restart\n" << logs());
  }

  /// The pool sessions in PostgreSQL right now (for failure messages).
  std::string activity() {
    auto r = pg->query("SELECT pid::text, state, coalesce(wait_event_type, '') || ':' || "
                       "coalesce(wait_event, ''), (now() - query_start)::text, left(query, 200) "
                       "FROM pg_stat_activity WHERE application_name = 'wharf'");
    if (!r)
      return "pg_stat_activity: " + test::why(r) + "\n";
    std::string out = "--- pool sessions (pid, state, wait, running for, query) ---\n";
    for (auto& row : r->rows) {
      for (auto& c : row)
        out += c.value_or("NULL") + " | ";
      out += "\n";
    }
    return out;
  }

  std::string logs() {
    std::string out;
    for (auto& n : nodes)
      out += n->log_tail(40) + "\n";
    return out;
  }

  http_answer http(size_t via, const std::string& method, const std::string& path,
                   const std::string& body = "") {
    http_answer a;
    a.status = test::http_request(node(via).port().http, method, path, body, &a.raw, 60s);
    a.body = json::parse(a.raw, nullptr, false);
    return a;
  }

  http_answer post(size_t via, const report_request& r) {
    return http(via, "POST", "/v1/reports", r.body().dump());
  }

  http_answer status(size_t via, const std::string& id) {
    return http(via, "GET", "/v1/reports/" + id);
  }

  /// Every row of a done report: inline, or paged through GET /v1/reports/{ref}/rows with
  /// `page` rows per request.
  std::vector<ub_row> rows_of(size_t via, const http_answer& a, uint64_t page = 700) {
    if (a.status != 200 || a.str("status") != "done")
      BOOST_FAIL("phase: expected a done report; got " << a.brief() << "\n" << activity() << logs());
    check_columns(field(a.body, "columns"));
    if (a.body.contains("rows")) {
      BOOST_REQUIRE_MESSAGE(a.str("result_ref").empty(), "both rows and result_ref: " << a.brief());
      BOOST_TEST(a.body.at("rows").size() <= large_result_rows, a.brief());
      return parse_rows(a.body.at("rows"));
    }
    auto ref = a.str("result_ref");
    auto total = a.num("total_rows");
    BOOST_REQUIRE_MESSAGE(!ref.empty(), "neither rows nor result_ref: " << a.brief());
    BOOST_TEST(total > large_result_rows, "a referenced result is over large_result_rows: " << a.brief());
    std::vector<ub_row> out;
    for (uint64_t round = 0; out.size() < total && round <= total / page + 1; ++round) {
      auto path = "/v1/reports/" + ref + "/rows?offset=" + std::to_string(out.size())
                  + "&limit=" + std::to_string(page);
      auto p = http(via, "GET", path);
      BOOST_REQUIRE_MESSAGE(p.status == 200, "phase: GET " << path << ": " << p.brief());
      BOOST_REQUIRE_EQUAL(p.num("offset"), out.size());
      BOOST_REQUIRE_EQUAL(p.num("total_rows"), total);
      check_columns(field(p.body, "columns"));
      auto rows = parse_rows(field(p.body, "rows"));
      BOOST_REQUIRE_MESSAGE(!rows.empty() && rows.size() <= page,
                            "phase: GET " << path << " gave " << rows.size() << " rows of "
                                          << total);
      out.insert(out.end(), rows.begin(), rows.end());
    }
    BOOST_REQUIRE_EQUAL(out.size(), total);
    return out;
  }

  /// `wharf report` with `--format csv --out FILE -q`; the rows are read back from FILE.
  cli_answer cli(size_t via, const report_request& r) {
    auto out_file = dir.str() + "/report-" + std::to_string(++cli_runs_) + ".csv";
    std::vector<std::string> argv = {WHARF_CLI_BIN, "report", r.report, "--connect",
                                     "127.0.0.1:" + std::to_string(node(via).port().rpc),
                                     "--start", r.start, "--end", r.end, "--mode", r.mode,
                                     "--format", "csv", "--out", out_file, "-q"};
    for (auto u : r.users)
      argv.insert(argv.end(), {"--user", std::to_string(u)});
    for (auto& [k, v] : r.filters)
      argv.insert(argv.end(), {"--filter", k + "=" + v});
    if (r.partitions)
      argv.insert(argv.end(), {"--partitions", std::to_string(r.partitions)});
    if (r.deadline_ms)
      argv.insert(argv.end(), {"--deadline-ms", std::to_string(r.deadline_ms)});
    cli_answer a;
    a.rc = test::run_command(argv, &a.output);
    if (a.rc != 0)
      return a;
    std::ifstream in{out_file};
    std::string line;
    BOOST_REQUIRE_MESSAGE(std::getline(in, line), "phase: CLI wrote no header to " << out_file);
    BOOST_REQUIRE_EQUAL(line, "user_id,event_type,avg_value,event_count");
    while (std::getline(in, line)) {
      auto f = csv_fields(line);
      BOOST_REQUIRE_MESSAGE(f.size() == 4 && f[0] && f[3], "phase: CLI CSV line \"" << line << "\"");
      ub_row row;
      row.user_id = std::stoll(*f[0]);
      row.event_type = f[1];
      if (f[2])
        row.avg_value = std::strtod(f[2]->c_str(), nullptr);
      row.event_count = std::stoll(*f[3]);
      a.rows.push_back(std::move(row));
    }
    return a;
  }

  /// The same report as one SQL statement, written independently of actors/analytics.
  std::vector<ub_row> truth(const report_request& r) {
    auto t = table_of(r.report);
    std::vector<std::string> params{r.start, r.end};
    std::string sql = "SELECT user_id, event_type, avg(value), count(id) FROM " + sql_table(t)
                      + " WHERE event_timestamp BETWEEN $1 AND $2";
    if (!r.users.empty()) {
      std::string ids = "{";
      for (size_t i = 0; i < r.users.size(); ++i)
        ids += (i ? "," : "") + std::to_string(r.users[i]);
      params.push_back(ids + "}");
      sql += " AND user_id = ANY($3::bigint[])";
    }
    for (auto& [k, v] : r.filters) {
      params.push_back(v);
      sql += " AND " + sql_table(k) + " = $" + std::to_string(params.size());
    }
    sql += " GROUP BY 1, 2";
    auto res = pg->query(sql, params);
    BOOST_REQUIRE_MESSAGE(res, "phase: ground truth " << sql << ": " << test::why(res));
    std::vector<ub_row> out;
    for (auto& row : res->rows) {
      ub_row x;
      x.user_id = std::stoll(row[0].value());
      x.event_type = row[1];
      if (row[2])
        x.avg_value = std::strtod(row[2]->c_str(), nullptr);
      x.event_count = std::stoll(row[3].value());
      out.push_back(std::move(x));
    }
    return out;
  }

  /// POSTs `r` (synchronously) and checks the rows against the ground truth; returns the answer.
  http_answer expect_truth(size_t via, const report_request& r) {
    auto a = post(via, r);
    auto got = rows_of(via, a);
    auto want = truth(r);
    auto d = diff(want, got);
    BOOST_TEST(d.empty(), "phase: " << r.body().dump() << " via n" << via << ": " << d << "\n"
                                    << a.brief());
    BOOST_TEST(a.num("total_rows") == want.size(), a.brief());
    BOOST_TEST(a.num("partitions_done") == a.num("partitions"), a.brief());
    if (r.mode != "auto")
      BOOST_TEST(a.str("mode") == r.mode, a.brief());
    else
      BOOST_TEST((a.str("mode") == "pushdown" || a.str("mode") == "pull"), a.brief());
    return a;
  }

  /// SIGKILLs n3 while report `id` (submitted to n1) runs and waits for the report to end;
  /// returns its final status, required to be done.
  http_answer kill_n3_until_done(const std::string& id) {
    node(3).signal(SIGKILL);
    BOOST_REQUIRE(node(3).wait() == 128 + SIGKILL);
    http_answer st;
    BOOST_REQUIRE_MESSAGE(eventually([&] {
                            st = status(1, id);
                            return st.status != 202;
                          },
                                     60s),
                          "phase: report " << id << " after SIGKILL of n3 never ended: "
                                           << st.brief() << "\n" << logs());
    BOOST_TEST_MESSAGE("SIGKILL of n3; final: " << st.brief());
    BOOST_REQUIRE_MESSAGE(st.status == 200,
                          "phase: report after SIGKILL: " << st.brief() << "\n" << logs());
    return st;
  }

  /// After kill_n3_until_done: every partition read, rows equal to the single statement's,
  /// and n1 saw n3 fail.
  void expect_exact_after_kill(const report_request& r, const http_answer& st) {
    BOOST_TEST(st.num("partitions_done") == st.num("partitions"), st.brief());
    auto got = rows_of(1, st, 5000);
    report_request plain = r;
    plain.async = false;
    auto d = diff(truth(plain), got);
    BOOST_TEST(d.empty(), "phase: rows after SIGKILL of n3: " << d);
    BOOST_TEST(node(1).log().find("worker n3 failed") != std::string::npos, node(1).log_tail());
  }

  std::unique_ptr<runtime::pg_connection> pg;
  test::temp_dir dir{"wharf-analytics"};
  std::vector<std::unique_ptr<node_process>> nodes;
  uint64_t large_result_rows = 1000;
  std::string analytics_toml; ///< more `[analytics]` settings ("key = value\n" lines)
  std::map<size_t, std::string> dsn_of; ///< node number -> its own DSN (else WHARF_PG_DSN)

  /// WHARF_PG_DSN with `options` (server settings, "-c name=value ...") for its sessions,
  /// in URI or key/value form as the DSN is written.
  static std::string dsn_with_options(const std::string& options) {
    std::string dsn = std::getenv("WHARF_PG_DSN");
    bool uri = dsn.rfind("postgres", 0) == 0 && dsn.find("://") != std::string::npos;
    if (uri) {
      std::string enc;
      for (unsigned char ch : options) {
        static const char hex[] = "0123456789ABCDEF";
        if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.')
          enc += static_cast<char>(ch);
        else
          enc += std::string("%") + hex[ch >> 4] + hex[ch & 15];
      }
      return dsn + (dsn.find('?') == std::string::npos ? "?" : "&") + "options=" + enc;
    }
    std::string quoted;
    for (char ch : options)
      quoted += ch == '\'' || ch == '\\' ? std::string("\\") + ch : std::string(1, ch);
    return dsn + " options='" + quoted + "'";
  }

private:
  std::function<void()> rewrite_config_;
  std::string config_;
  std::string extra_toml_;

  static json field(const json& j, const char* key) {
    return j.is_object() && j.contains(key) ? j.at(key) : json{};
  }

  static std::string toml_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s)
      out += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
    return out + "\"";
  }

  std::string table_of(const std::string& report) {
    for (auto& [name, t] : reports_)
      if (name == report)
        return t;
    BOOST_FAIL("no report " << report << " defined in this case");
    return {};
  }

  void check_columns(const json& cols) {
    std::vector<std::string> names;
    if (cols.is_array())
      for (auto& c : cols)
        names.push_back(c.value("name", "?") + ":" + c.value("type", "?"));
    std::vector<std::string> want{"user_id:int", "event_type:text", "avg_value:float",
                                  "event_count:int"};
    BOOST_REQUIRE_MESSAGE(names == want, "columns: " << cols.dump());
  }

  static std::vector<ub_row> parse_rows(const json& rows) {
    BOOST_REQUIRE_MESSAGE(rows.is_array(), "rows: " << rows.dump().substr(0, 300));
    std::vector<ub_row> out;
    out.reserve(rows.size());
    for (auto& r : rows) {
      BOOST_REQUIRE_MESSAGE(r.is_array() && r.size() == 4 && r[0].is_number_integer()
                              && (r[1].is_string() || r[1].is_null())
                              && (r[2].is_number() || r[2].is_null())
                              && r[3].is_number_integer(),
                            "row: " << r.dump());
      ub_row x;
      x.user_id = r[0].get<int64_t>();
      if (r[1].is_string())
        x.event_type = r[1].get<std::string>();
      if (r[2].is_number())
        x.avg_value = r[2].get<double>();
      x.event_count = r[3].get<int64_t>();
      out.push_back(std::move(x));
    }
    return out;
  }

  bool all_alive_everywhere() {
    for (auto& n : nodes)
      if (test::http_get(n->port().http, "/health") != 200)
        return false;
    for (auto& viewer : nodes) {
      runtime::admin_client client{"127.0.0.1", viewer->port().rpc, 5s};
      auto r = client.call(protocols::admin_request{protocols::admin_command::members, "", "", "", ""});
      if (!r || !r->error.empty())
        return false;
      for (auto& n : nodes) {
        auto m = std::find_if(r->members.begin(), r->members.end(),
                              [&](auto& x) { return x.name == n->name(); });
        if (m == r->members.end() || m->status != protocols::member_status::alive)
          return false;
      }
    }
    return true;
  }

  std::vector<std::pair<std::string, std::string>> reports_;
  std::vector<std::string> cleanup_;
  int cli_runs_ = 0;
  int clusters_ = 0;
};

const std::string event0 = actors::event_types()[0];

} // namespace

BOOST_FIXTURE_TEST_SUITE(analytics, analytics_fixture)

// -- 1. the distributed answer is the single-SQL answer --

BOOST_AUTO_TEST_CASE(every_mode_gives_the_single_sql_answer) {
  if (!pg)
    return;
  auto t = table("modes");
  load(t, 30000, 200, 3);
  define("modes_report", t);
  start();
  for (auto mode : {"pushdown", "pull", "auto"}) {
    report_request all;
    all.report = "modes_report";
    all.mode = mode;
    all.partitions = 7;
    auto a = expect_truth(1, all); // 200 users x 8 types: over large_result_rows, by reference
    BOOST_TEST(!a.str("result_ref").empty(), a.brief());
    BOOST_TEST(a.num("partitions") == 7u, a.brief());
    BOOST_TEST(a.num("retries") == 0u, a.brief());
    report_request some = all;
    some.start = "2025-03-01";
    some.end = "2025-09-30";
    some.users = {1, 2, 3, 50, 199, 123456}; // the last one has no rows
    some.filters = {{"event_type", event0}};
    some.partitions = 0; // the node's default
    auto b = expect_truth(2, some);
    BOOST_TEST(b.body.contains("rows"), b.brief());
    BOOST_TEST(b.num("total_rows") > 0u, b.brief());
  }
}

// -- 2. edge cases --

BOOST_AUTO_TEST_CASE(an_empty_table_and_an_empty_range_are_done_with_zero_rows) {
  if (!pg)
    return;
  auto empty = table("empty");
  load(empty, 0, 1, 1);
  auto full = table("nonempty");
  load(full, 2000, 20, 1);
  define("empty_report", empty);
  define("nonempty_report", full);
  start();
  for (auto mode : {"pushdown", "pull", "auto"}) {
    report_request r;
    r.report = "empty_report";
    r.mode = mode;
    r.partitions = 8;
    auto a = post(1, r);
    BOOST_TEST(a.status == 200, a.brief());
    BOOST_TEST(a.str("status") == "done", a.brief());
    BOOST_TEST(rows_of(1, a).empty());
    BOOST_TEST(a.num("total_rows") == 0u, a.brief());
    r.report = "nonempty_report";
    r.start = "2030-01-01";
    r.end = "2030-12-31";
    a = post(2, r);
    BOOST_TEST(a.str("status") == "done", a.brief());
    BOOST_TEST(rows_of(2, a).empty());
    BOOST_TEST(truth(r).empty());
  }
}

BOOST_AUTO_TEST_CASE(a_single_row_is_found_at_both_ends_of_an_inclusive_range) {
  if (!pg)
    return;
  auto t = table("one");
  load(t, 1, 1, 1);
  exec("UPDATE " + sql_table(t) + " SET user_id = 7, event_type = 'only', value = 42.5, "
       "event_timestamp = '2025-06-15 12:34:56'");
  define("one_report", t);
  start();
  for (auto mode : {"pushdown", "pull", "auto"}) {
    report_request r;
    r.report = "one_report";
    r.mode = mode;
    r.partitions = 8;
    r.start = r.end = "2025-06-15 12:34:56";
    auto a = post(3, r);
    auto rows = rows_of(3, a);
    BOOST_REQUIRE_MESSAGE(rows.size() == 1u, a.brief());
    BOOST_TEST(show(rows[0]) == show(ub_row{7, std::string("only"), 42.5, 1}));
    auto d = diff(truth(r), rows);
    BOOST_TEST(d.empty(), d);
    BOOST_TEST(a.num("partitions") == 1u, "one id: one partition, whatever was asked; " << a.brief());
    r.start = "2025-06-15 12:34:57";
    r.end = "2025-06-16";
    BOOST_TEST(rows_of(3, post(3, r)).empty());
  }
}

BOOST_AUTO_TEST_CASE(skewed_ids_are_each_read_once) {
  if (!pg)
    return;
  auto t = table("skew");
  load(t, 5000, 40, 5);
  // Most ids at 1..5000, some 10^12 further on, some far below zero: most id ranges are empty.
  exec("UPDATE " + sql_table(t) + " SET id = id + 1000000000000 WHERE id % 50 = 0");
  exec("UPDATE " + sql_table(t) + " SET id = -id - 1000000000000 WHERE id % 50 = 7");
  exec("ANALYZE " + sql_table(t));
  define("skew_report", t);
  start();
  for (auto mode : {"pushdown", "pull"})
    for (uint32_t parts : {3u, 16u, 96u}) {
      report_request r;
      r.report = "skew_report";
      r.mode = mode;
      r.partitions = parts;
      auto a = expect_truth(1, r);
      BOOST_TEST(a.num("partitions") == parts, a.brief());
    }
}

BOOST_AUTO_TEST_CASE(ids_spread_over_the_whole_bigint_range_are_each_read_once) {
  if (!pg)
    return;
  // Random 63-bit ids (hashes, ids drawn at random) span nearly all of bigint: the id span
  // times the partition number no longer fits 64 bits, and with both signs the span itself
  // is over INT64_MAX.
  auto pos = table("wideid");
  load(pos, 5000, 40, 6);
  exec("UPDATE " + sql_table(pos) + " SET id = id * 1800000000000000"); // 1.8e15 .. 9.0e18
  exec("ANALYZE " + sql_table(pos));
  define("wideid_report", pos);
  auto both = table("signedid");
  load(both, 5000, 40, 16);
  exec("UPDATE " + sql_table(both) + " SET id = CASE WHEN id % 2 = 0 THEN id * 1800000000000000 "
       "ELSE -id * 1800000000000000 END");
  exec("ANALYZE " + sql_table(both));
  define("signedid_report", both);
  start();
  for (auto report : {"wideid_report", "signedid_report"})
    for (auto mode : {"pushdown", "pull"})
      for (uint32_t parts : {3u, 96u}) {
        report_request r;
        r.report = report;
        r.mode = mode;
        r.partitions = parts;
        expect_truth(1, r);
      }
}

BOOST_AUTO_TEST_CASE(null_values_and_null_keys_follow_sql) {
  if (!pg)
    return;
  auto t = table("nulls");
  load(t, 6000, 30, 7);
  exec("UPDATE " + sql_table(t) + " SET value = NULL WHERE user_id = 3 OR id % 7 = 0");
  exec("UPDATE " + sql_table(t) + " SET event_type = NULL WHERE id % 13 = 0");
  define("nulls_report", t);
  start();
  for (auto mode : {"pushdown", "pull"}) {
    report_request r;
    r.report = "nulls_report";
    r.mode = mode;
    r.partitions = 5;
    auto a = expect_truth(2, r);
    auto rows = rows_of(2, a);
    size_t all_null_groups = 0, null_keys = 0;
    for (auto& x : rows) {
      if (x.user_id == 3) {
        BOOST_TEST(!x.avg_value.has_value(), "user 3 has only NULL values: " << show(x));
        BOOST_TEST(x.event_count > 0, "count(id) still counts the rows: " << show(x));
        ++all_null_groups;
      }
      null_keys += !x.event_type.has_value();
    }
    BOOST_TEST(all_null_groups > 0u, "no group of user 3 in the answer; " << a.brief());
    BOOST_TEST(null_keys > 0u, "no group with a NULL event_type in the answer; " << a.brief());
  }
}

// -- 3. injection attempts --

BOOST_AUTO_TEST_CASE(a_filter_on_a_column_not_allowed_is_invalid_argument) {
  if (!pg)
    return;
  auto t = table("inject_col");
  load(t, 3000, 20, 8);
  define("inject_col_report", t);
  start();
  auto before = count(t);
  for (auto& key : std::vector<std::string>{"event_type; DROP TABLE " + t + "; --", "value",
                                           "event_type\" OR \"id"}) {
    for (auto mode : {"pushdown", "pull"}) {
      report_request r;
      r.report = "inject_col_report";
      r.mode = mode;
      r.filters = {{key, event0}};
      auto a = post(1, r);
      BOOST_TEST(a.status == 400, "filter key " << key << ": " << a.brief());
      BOOST_TEST(a.str("error_code") == "INVALID_ARGUMENT", a.brief());
      BOOST_TEST(a.str("error_message").find("cannot filter on") != std::string::npos, a.brief());
      auto c = cli(2, r);
      BOOST_TEST(c.rc == 1, "filter key " << key << ": " << c.output);
      BOOST_TEST(c.output.find("wharf report: failed: INVALID_ARGUMENT: ") != std::string::npos,
                 c.output);
    }
  }
  BOOST_TEST(count(t) == before);
  BOOST_TEST(scalar("SELECT to_regclass($1) IS NOT NULL", {sql_table(t)}) == "t");
}

BOOST_AUTO_TEST_CASE(sql_in_a_value_is_only_a_value) {
  if (!pg)
    return;
  auto t = table("inject_val");
  load(t, 3000, 20, 9);
  define("inject_val_report", t);
  start();
  auto before = count(t);
  for (auto mode : {"pushdown", "pull"}) {
    report_request r;
    r.report = "inject_val_report";
    r.mode = mode;
    r.partitions = 4;
    // A real value matches (so the filter is applied at all) ...
    r.filters = {{"event_type", event0}};
    auto ok = expect_truth(1, r);
    BOOST_TEST(ok.num("total_rows") > 0u, ok.brief());
    // ... and text with SQL in it matches nothing, in the JSON and in the CLI.
    for (auto& v : std::vector<std::string>{"x' OR '1'='1", "x'; DROP TABLE " + t + "; --",
                                            "') OR true; --", "x\\'; SELECT pg_sleep(5); --"}) {
      r.filters = {{"event_type", v}};
      auto a = post(1, r);
      BOOST_TEST(a.status == 200, "value " << v << ": " << a.brief());
      BOOST_TEST(a.str("status") == "done", a.brief());
      BOOST_TEST(a.num("total_rows") == 0u, "value " << v << ": " << a.brief());
      auto c = cli(3, r);
      BOOST_TEST(c.rc == 0, "value " << v << ": " << c.output);
      BOOST_TEST(c.rows.empty(), "value " << v << ": CLI gave " << c.rows.size() << " rows");
    }
    // Where the column is an integer, PostgreSQL refuses the text: a bad argument, not a match.
    r.filters = {{"user_id", "1 OR 1=1"}};
    auto a = post(2, r);
    BOOST_TEST(a.status == 400, a.brief());
    BOOST_TEST(a.str("error_code") == "INVALID_ARGUMENT", a.brief());
    r.filters.clear();
    r.start = "2025-01-01'; DROP TABLE " + t + "; --";
    a = post(2, r);
    BOOST_TEST(a.status == 400, a.brief());
    BOOST_TEST(a.str("error_code") == "INVALID_ARGUMENT", a.brief());
  }
  BOOST_TEST(count(t) == before);
}

BOOST_AUTO_TEST_CASE(an_unknown_report_is_not_found) {
  if (!pg)
    return;
  start();
  report_request r;
  r.report = "no_such_report";
  auto a = post(1, r);
  BOOST_TEST(a.status == 404, a.brief());
  BOOST_TEST(a.str("error_code") == "NOT_FOUND", a.brief());
  BOOST_TEST(a.str("error_message").find("user_behavior_report") != std::string::npos,
             "the message lists the known reports: " << a.brief());
  r.report = "user_behavior_report; DROP TABLE user_events";
  a = post(1, r);
  BOOST_TEST(a.status == 404, a.brief());
  auto c = cli(2, r);
  BOOST_TEST(c.rc == 1, c.output);
  BOOST_TEST(c.output.find("failed: NOT_FOUND: ") != std::string::npos, c.output);
  a = status(1, "n1-0000000000000000");
  BOOST_TEST(a.status == 404, a.brief());
  a = http(1, "GET", "/v1/reports/n1-0000000000000000/rows?offset=0&limit=10");
  BOOST_TEST(a.status == 404, a.brief());
  // An id naming a node that does not exist: answered, not forwarded into silence.
  a = status(1, "zz-0000000000000000");
  BOOST_TEST(a.status == 404, a.brief());
  BOOST_TEST(a.str("error_code") == "NOT_FOUND", a.brief());
  a = http(2, "DELETE", "/v1/reports/zz-0000000000000000");
  BOOST_TEST(a.status == 404, a.brief());
  // n2 forwards a status of n1's report id to n1, which knows no such report.
  a = status(2, "n1-0000000000000000");
  BOOST_TEST(a.status == 404, a.brief());
}

// -- reports on a cluster that just formed --

// Members that learn of each other from the same gossip dial each other at once. A call
// between them in the moments after must still be answered or fail, never vanish (seen:
// the read of one partition lost, the report hanging until its deadline). The race depends
// on timing, so several fresh clusters, with the fast heartbeat that made it show, give it
// several chances (five nodes: the coordinator has four links at risk); each report gets a
// short deadline.
BOOST_AUTO_TEST_CASE(a_report_on_a_cluster_that_just_formed_is_not_lost) {
  // CAF may lose a message while two nodes that just met settle their connection. A gate
  // instead of luck: every node drops the first read call it gets (analytics.test_drop_reads),
  // and the report must still find those reads missing, send them again and be exact.
  if (!pg)
    return;
  auto t = table("fresh");
  load(t, 6000, 30, 7);
  define("fresh_report", t);
  analytics_toml = "test_drop_reads = 1\n";
  start(3, "[cluster]\nheartbeat_ms = 100\nfailure_timeout_ms = 1000\n\n");
  report_request r;
  r.report = "fresh_report";
  r.mode = "pushdown";
  r.partitions = 9; // three per node: the coordinator (n2) calls every member
  r.deadline_ms = 15000;
  auto a = post(2, r);
  if (a.status != 200)
    BOOST_FAIL("phase: a report whose first reads were lost: " << a.brief() << "\n"
                                                              << activity() << logs());
  auto d = diff(truth(r), rows_of(2, a));
  BOOST_TEST(d.empty(), d);
  for (size_t i = 1; i <= 3; ++i)
    BOOST_TEST(node(i).log().find("test_drop_reads: dropping read call 1 of 1") != std::string::npos,
               node(i).log_tail());
  BOOST_TEST(node(2).log().find("never reached") != std::string::npos, node(2).log_tail());
}

BOOST_AUTO_TEST_CASE(sigkill_of_a_worker_mid_report_still_gives_the_exact_answer) {
  if (!pg)
    return;
  auto t = table("kill");
  load(t, 1000000, 1000, 11);
  define("kill_report", t);
  start();
  report_request r;
  r.report = "kill_report";
  r.mode = "pull";
  r.partitions = 256;
  r.async = true;
  auto sub = post(1, r);
  BOOST_REQUIRE_MESSAGE(sub.status == 202 && !sub.str("report_id").empty(),
                        "phase: submit: " << sub.brief());
  auto id = sub.str("report_id");
  http_answer st;
  BOOST_REQUIRE_MESSAGE(eventually([&] {
                          st = status(1, id);
                          return st.status != 202 || st.num("partitions_done") >= 1;
                        }),
                        "phase: waiting for the first partition of " << id << ": " << st.brief()
                                                                     << "\n" << logs());
  BOOST_REQUIRE_MESSAGE(st.status == 202 && st.num("partitions_done") < st.num("partitions"),
                        "phase: the report ended before the SIGKILL could land; make it longer "
                        "(rows, partitions): " << st.brief());
  auto done_at_kill = st.num("partitions_done");
  st = kill_n3_until_done(id);
  BOOST_TEST(st.num("retries") > 0u,
             "n3 was killed at " << done_at_kill << "/" << st.num("partitions")
                                 << " partitions, yet no partition was re-run: either the "
                                    "report finished before the kill landed (make it longer) or "
                                    "n3's lost work went unnoticed; " << st.brief());
  expect_exact_after_kill(r, st);
}

// Pushdown hands each node a run of adjacent partitions as one statement. n3's sessions take
// a role whose rows sit behind a row-level-security gate (an advisory lock this test holds),
// so its runs are stuck mid-statement, without any timing, when it is killed: they must be
// read again by n1 and n2, and the answer stay exact.
BOOST_AUTO_TEST_CASE(sigkill_of_a_worker_holding_pushdown_runs_still_gives_the_exact_answer) {
  if (!pg)
    return;
  auto tag = "wharf_test_" + std::to_string(::getpid());
  auto role = tag + "_gate";
  auto gate = tag + "_gate_fn";
  auto key = std::to_string(7000000000LL + ::getpid());
  cleanup("DROP ROLE IF EXISTS " + sql_table(role));
  cleanup("DROP FUNCTION IF EXISTS " + sql_table(gate) + "()");
  auto t = table("gated");
  load(t, 200000, 1000, 13);
  exec("DROP ROLE IF EXISTS " + sql_table(role));
  exec("CREATE ROLE " + sql_table(role) + " NOLOGIN");
  exec("GRANT " + sql_table(role) + " TO CURRENT_USER"); // so n3's sessions may SET ROLE
  exec("GRANT SELECT ON " + sql_table(t) + " TO " + sql_table(role));
  exec("CREATE FUNCTION " + sql_table(gate) + "() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$"
       " BEGIN PERFORM pg_advisory_lock_shared(" + key + "); PERFORM pg_advisory_unlock_shared("
       + key + "); RETURN true; END $$");
  exec("ALTER TABLE " + sql_table(t) + " ENABLE ROW LEVEL SECURITY");
  exec("CREATE POLICY gate ON " + sql_table(t) + " FOR SELECT TO " + sql_table(role) + " USING ("
       + sql_table(gate) + "())");
  exec("SELECT pg_advisory_lock(" + key + ")");
  cleanup("SELECT pg_advisory_unlock_all()");
  // n3 connects as the test's user and takes the role for its whole session.
  dsn_of[3] = dsn_with_options("-c role=" + role);
  define("gated_report", t);
  start();
  dsn_of.clear();
  report_request r;
  r.report = "gated_report";
  r.mode = "pushdown";
  r.partitions = 12; // 6 readers in the cluster, all free: runs of two partitions each
  r.async = true;
  auto sub = post(1, r);
  BOOST_REQUIRE_MESSAGE(sub.status == 202 && !sub.str("report_id").empty(),
                        "phase: submit: " << sub.brief());
  auto id = sub.str("report_id");
  auto waiting = [&] {
    return std::stoll(scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                             "'wharf' AND wait_event = 'advisory' AND position($1 in query) > 0",
                             {t}));
  };
  // Both of n3's readers hold a run behind the gate.
  BOOST_REQUIRE_MESSAGE(eventually([&] { return waiting() == 2; }),
                        "phase: n3's statements never reached the gate\n" << activity() << logs());
  auto st = status(1, id);
  BOOST_REQUIRE_MESSAGE(st.status == 202 && st.num("partitions_done") < st.num("partitions"),
                        "phase: the report must wait for n3's gated runs: " << st.brief());
  st = kill_n3_until_done(id);
  // n3 held two runs of two partitions: all four are read again (single-partition reads
  // would have given two).
  BOOST_TEST(st.num("retries") >= 4u, st.brief());
  expect_exact_after_kill(r, st);
  exec("SELECT pg_advisory_unlock(" + key + ")");
}

// -- 5. deadline and cancel --

BOOST_AUTO_TEST_CASE(a_deadline_of_one_ms_times_out_and_stops_the_readers) {
  if (!pg)
    return;
  auto t = table("deadline");
  load(t, 1000000, 1000, 12);
  define("deadline_report", t);
  start();
  report_request r;
  r.report = "deadline_report";
  r.mode = "pull";
  r.partitions = 96;
  r.deadline_ms = 1;
  auto a = post(1, r);
  BOOST_TEST(a.status == 504, a.brief());
  BOOST_TEST(a.str("status") == "timeout", a.brief());
  BOOST_TEST(a.str("error_code") == "TIMEOUT", a.brief());
  BOOST_TEST(!a.body.contains("rows"), a.brief());
  auto id = a.str("report_id");
  BOOST_REQUIRE_MESSAGE(!id.empty(), a.brief());
  auto s = status(1, id);
  BOOST_TEST(s.status == 504, s.brief());
  BOOST_TEST(s.str("status") == "timeout", s.brief());
  BOOST_TEST(eventually([&] { return active_on(t) == 0; }, 10s),
             "pool sessions still run statements on " << t << " after the timeout");
}

BOOST_AUTO_TEST_CASE(cancel_stops_the_readers_and_frees_their_connections) {
  if (!pg)
    return;
  auto t = table("cancel");
  load(t, 1000000, 1000, 13);
  define("cancel_report", t);
  start();
  report_request r;
  r.report = "cancel_report";
  r.mode = "pull";
  r.partitions = 1024;
  r.async = true;
  auto sub = post(1, r);
  BOOST_REQUIRE_MESSAGE(sub.status == 202, "phase: submit: " << sub.brief());
  auto id = sub.str("report_id");
  // Readers at work: a pool session (application_name 'wharf') runs a statement on the table.
  BOOST_REQUIRE_MESSAGE(eventually([&] { return active_on(t) > 0 || status(1, id).status != 202; }),
                        "phase: no reader ever ran on " << t);
  auto st = status(1, id);
  BOOST_REQUIRE_MESSAGE(st.status == 202, "phase: the report ended before the cancel; make it "
                                          "longer: " << st.brief());
  auto c = http(1, "DELETE", "/v1/reports/" + id);
  BOOST_TEST(c.status == 409, c.brief());
  BOOST_TEST(c.str("status") == "cancelled", c.brief());
  BOOST_TEST(c.str("error_code") == "CANCELLED", c.brief());
  st = status(1, id);
  BOOST_TEST(st.status == 409, st.brief());
  BOOST_TEST(st.str("status") == "cancelled", st.brief());
  BOOST_TEST(st.num("partitions_done") < st.num("partitions"), st.brief());
  int64_t active = -1;
  BOOST_TEST(eventually([&] { return (active = active_on(t)) == 0; }, 10s),
             "phase: after cancel, " << active << " pool sessions still run statements on " << t
                                     << "\n" << logs());
  // A second cancel is answered with the final state, not an error.
  c = http(1, "DELETE", "/v1/reports/" + id);
  BOOST_TEST(c.status == 409, c.brief());
  BOOST_TEST(c.str("status") == "cancelled", c.brief());
}

// -- 6. the HTTP endpoint and the CLI agree --

BOOST_AUTO_TEST_CASE(reports_over_the_running_limit_wait_their_turn) {
  if (!pg)
    return;
  auto t = table("admit");
  load(t, 3000, 20, 17);
  define("admit_report", t);
  analytics_toml = "max_running_reports = 1\nmax_queued_reports = 2\n";
  start();
  // The gate: a lock the test holds keeps the first report planning until it lets go.
  auto gate = test::connect_test_pg();
  BOOST_REQUIRE(gate);
  BOOST_REQUIRE(gate->query("BEGIN"));
  BOOST_REQUIRE(gate->query("LOCK TABLE " + sql_table(t) + " IN ACCESS EXCLUSIVE MODE"));
  report_request r;
  r.report = "admit_report";
  r.async = true;
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto a = post(1, r);
    BOOST_REQUIRE_MESSAGE(a.status == 202, "phase: submit " << i << ": " << a.brief());
    BOOST_TEST(a.str("status") == (i == 0 ? "running" : "pending"), a.brief());
    ids.push_back(a.str("report_id"));
  }
  // Past the queue: 503 with Retry-After, nothing started.
  test::tcp_client c{node(1).port().http};
  auto body = r.body().dump();
  c.send("POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size())
         + "\r\n\r\n" + body);
  auto full = c.read_until("}\n");
  BOOST_TEST(full.rfind("HTTP/1.1 503 ", 0) == 0, full);
  BOOST_TEST(full.find("Retry-After: ") != std::string::npos, full);
  BOOST_TEST(full.find("\"error_code\":\"RESOURCE_EXHAUSTED\"") != std::string::npos, full);
  // The console lists them; a queued one is cancelled from another node (forwarded to n1).
  std::string out;
  BOOST_TEST(test::run_command({WHARF_CLI_BIN, "console", "--connect",
                                "127.0.0.1:" + std::to_string(node(2).port().rpc), "-c",
                                "reports n1"},
                               &out) == 0, out);
  BOOST_TEST(out.find(ids[0]) != std::string::npos, out);
  BOOST_TEST(out.find("running") != std::string::npos, out);
  BOOST_TEST(out.find("pending") != std::string::npos, out);
  BOOST_TEST(test::run_command({WHARF_CLI_BIN, "console", "--connect",
                                "127.0.0.1:" + std::to_string(node(2).port().rpc), "-c",
                                "cancel " + ids[2]},
                               &out) == 0, out);
  BOOST_TEST(out.find("report " + ids[2] + " on n1: cancelled") != std::string::npos, out);
  // Open the gate: the running one, then the queued one, finish with the exact answer.
  BOOST_REQUIRE(gate->query("COMMIT"));
  r.async = false;
  for (int i = 0; i < 2; ++i) {
    http_answer st;
    BOOST_REQUIRE_MESSAGE(eventually([&] { return (st = status(1, ids[i])).status != 202; }, 30s),
                          "phase: waiting for report " << i << "\n" << logs());
    BOOST_TEST(st.status == 200, st.brief());
    auto d = diff(truth(r), rows_of(1, st));
    BOOST_TEST(d.empty(), "report " << i << ": " << d);
  }
  BOOST_TEST(status(1, ids[2]).str("status") == "cancelled");
  BOOST_TEST(node(1).log().find("starts after") != std::string::npos, node(1).log_tail());
}

BOOST_AUTO_TEST_CASE(http_and_cli_give_the_same_rows) {
  if (!pg)
    return;
  auto t = table("same");
  load(t, 20000, 200, 14);
  // NULLs, so that their spelling in CSV (empty field) and JSON (null) is compared too.
  exec("UPDATE " + sql_table(t) + " SET value = NULL WHERE user_id = 9 OR id % 11 = 0");
  exec("UPDATE " + sql_table(t) + " SET event_type = NULL WHERE id % 17 = 0");
  define("same_report", t);
  start();
  report_request small;
  small.report = "same_report";
  small.start = "2025-02-01";
  small.end = "2025-10-15 12:00:00";
  small.users = {9, 10, 11, 12};
  small.mode = "pull";
  small.partitions = 6;
  report_request big = small; // 200 users x 9 keys: fetched by reference on both paths
  big.users.clear();
  big.mode = "pushdown";
  report_request filtered = small;
  filtered.users.clear();
  filtered.filters = {{"event_type", event0}, {"user_id", "9"}};
  for (auto* r : {&small, &big, &filtered}) {
    auto a = post(2, *r);
    auto via_http = rows_of(2, a);
    auto c = cli(3, *r);
    BOOST_REQUIRE_MESSAGE(c.rc == 0, "phase: CLI for " << r->body().dump() << ": " << c.output);
    auto d = diff(via_http, c.rows);
    BOOST_TEST(d.empty(), "HTTP vs CLI for " << r->body().dump() << ": " << d);
    d = diff(truth(*r), c.rows);
    BOOST_TEST(d.empty(), "SQL vs CLI for " << r->body().dump() << ": " << d);
    BOOST_TEST(!c.rows.empty());
  }
}

// -- 7. PostgreSQL's errors reach the caller with their SQLSTATE --

BOOST_AUTO_TEST_CASE(postgres_errors_reach_the_caller_with_their_sqlstate) {
  if (!pg)
    return;
  auto missing = table("missing"); // never created
  define("missing_report", missing);
  // A view whose value raises a custom SQLSTATE for one row: the error happens in a worker's
  // read, not while planning.
  auto base = table("boom_base");
  load(base, 2000, 10, 15);
  auto fn = "wharf_test_" + std::to_string(::getpid()) + "_boom";
  auto view = "wharf_test_" + std::to_string(::getpid()) + "_boom_view";
  cleanup("DROP FUNCTION IF EXISTS " + sql_table(fn) + "(float8, bigint) CASCADE");
  exec("CREATE FUNCTION " + sql_table(fn) + "(v float8, i bigint) RETURNS float8 LANGUAGE "
       "plpgsql AS $$ BEGIN IF i = 777 THEN RAISE EXCEPTION 'boom at id %', i USING ERRCODE = "
       "'WH001'; END IF; RETURN v; END $$");
  exec("CREATE VIEW " + sql_table(view) + " AS SELECT id, user_id, event_type, event_timestamp, "
       + sql_table(fn) + "(value, id) AS value FROM " + sql_table(base));
  define("boom_report", view);
  start();
  report_request r;
  r.report = "missing_report";
  auto a = post(1, r);
  BOOST_TEST(a.status == 502, a.brief());
  BOOST_TEST(a.str("status") == "failed", a.brief());
  BOOST_TEST(a.str("error_code") == "PG_ERROR", a.brief());
  BOOST_TEST(a.str("sqlstate") == "42P01", a.brief()); // undefined_table
  auto c = cli(2, r);
  BOOST_TEST(c.rc == 1, c.output);
  BOOST_TEST(c.output.find("wharf report: failed: PG_ERROR: ") != std::string::npos, c.output);
  BOOST_TEST(c.output.find("(SQLSTATE 42P01)") != std::string::npos, c.output);
  for (auto mode : {"pushdown", "pull"}) {
    r.report = "boom_report";
    r.mode = mode;
    r.partitions = 4;
    a = post(3, r);
    BOOST_TEST(a.status == 502, mode << ": " << a.brief());
    BOOST_TEST(a.str("error_code") == "PG_ERROR", a.brief());
    BOOST_TEST(a.str("sqlstate") == "WH001", a.brief());
    BOOST_TEST(a.str("error_message").find("boom at id 777") != std::string::npos, a.brief());
    c = cli(1, r);
    BOOST_TEST(c.rc == 1, c.output);
    BOOST_TEST(c.output.find("(SQLSTATE WH001)") != std::string::npos, c.output);
  }
  // Without the failing row the same view reads fine: the failure above was that row.
  r.start = "2025-01-01";
  r.end = "2025-12-31 23:59:59";
  exec("UPDATE " + sql_table(base) + " SET id = -777 WHERE id = 777");
  r.mode = "pull";
  expect_truth(1, r);
}

// -- 7b. keys SQL calls equal --

// GROUP BY folds -0 into 0, every NaN (whatever its bits) into one group, 1.0 into 1.00 and
// '24 hours' into '1 day'; so must the reports, in both modes, and count_distinct likewise.
// A key whose equal values can differ in bytes in ways wharf does not fold (jsonb) is
// refused, not answered with split groups.
BOOST_AUTO_TEST_CASE(float_numeric_and_interval_keys_group_as_sql_does) {
  if (!pg)
    return;
  auto t = table("equal_keys");
  load(t, 2100, 50, 22);
  // The interval column is a domain over a domain: keys go by the base type.
  auto span = sql_table(t + "_span"), span2 = sql_table(t + "_span2");
  cleanup("DROP DOMAIN IF EXISTS " + span2 + ", " + span + " CASCADE");
  exec("CREATE DOMAIN " + span + " AS interval");
  exec("CREATE DOMAIN " + span2 + " AS " + span);
  exec("ALTER TABLE " + sql_table(t) + " ADD COLUMN score float8, ADD COLUMN amount numeric,"
       " ADD COLUMN span " + span2 + ", ADD COLUMN tags jsonb");
  exec("UPDATE " + sql_table(t) + " SET score = CASE id % 7 WHEN 0 THEN '-0'::float8 WHEN 1 "
       "THEN 0 WHEN 2 THEN 'NaN' WHEN 3 THEN 'NaN' WHEN 4 THEN 'Infinity'::float8 - "
       "'Infinity'::float8 WHEN 5 THEN NULL ELSE 1.5 END, amount = CASE id % 3 WHEN 0 THEN "
       "1.0 WHEN 1 THEN 1.00 ELSE 2.50 END, span = (ARRAY['1 day', '24 hours', '1 mon',"
       " '30 days', '1 mon -1 day', '29 days', '2 days'])[id % 7 + 1]::interval,"
       " tags = jsonb_build_object('v', CASE WHEN id % 2 = 0 THEN 1.0 ELSE 1.00 END)");
  // The two NaNs differ in their bits (what binary COPY sends), or this case proves nothing.
  BOOST_REQUIRE_NE(scalar("SELECT float8send('NaN')::text"),
                   scalar("SELECT float8send('Infinity'::float8 - 'Infinity'::float8)::text"));
  std::string reports;
  for (auto [name, key, aggs] :
       {std::tuple<const char*, const char*, const char*>{
          "by_score", "score", "\"count(id) AS n\", \"count_distinct(amount) AS amounts\""},
        {"by_amount", "amount", "\"count(id) AS n\""},
        {"by_span", "span", "\"count(id) AS n\", \"count_distinct(span) AS spans\""},
        {"by_span_n", "span", "\"count(id) AS n\""},
        {"by_tags", "tags", "\"count(id) AS n\""}})
    reports += std::string("[[reports]]\nname = \"") + name + "\"\ntable = " + toml_quote(t)
               + "\npartition_column = \"id\"\ntime_column = \"event_timestamp\"\n"
               + "group_by = [\"" + key + "\"]\naggregates = [" + aggs + "]\n";
  start(3, reports);
  report_request r;
  r.partitions = 6;
  // Rows as "key|aggregates...": a key SQL calls 0 is "0", NaN and NULL are "null" (JSON
  // has no NaN; their counts tell them apart), numerics compare as numbers.
  auto spell = [](const json& v) {
    if (v.is_null() || (v.is_string() && v.get<std::string>() == "NaN"))
      return std::string("null");
    if (!v.is_string() && !v.is_number())
      return v.dump();
    double d = 0;
    if (v.is_string()) {
      auto text = v.get<std::string>();
      char* end = nullptr;
      d = std::strtod(text.c_str(), &end);
      if (end != text.c_str() + text.size())
        return text; // not a number: an interval
    } else {
      d = v.get<double>();
    }
    return std::to_string(d == 0 ? 0.0 : d); // -0 is 0
  };
  auto got = [&](const http_answer& a) {
    BOOST_REQUIRE_MESSAGE(a.status == 200 && a.body.contains("rows"), a.brief() << "\n" << logs());
    std::vector<std::string> out;
    for (auto& row : a.body.at("rows")) {
      std::string line = spell(row.at(0));
      for (size_t i = 1; i < row.size(); ++i)
        line += "|" + row.at(i).dump();
      out.push_back(line);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  auto want = [&](const std::string& sql) {
    auto res = pg->query(sql, {r.start, r.end});
    BOOST_REQUIRE_MESSAGE(res, sql << ": " << test::why(res));
    std::vector<std::string> out;
    for (auto& row : res->rows) {
      std::string line = row[0] ? spell(json(*row[0] == "NaN" ? "NaN" : *row[0])) : "null";
      for (size_t i = 1; i < row.size(); ++i)
        line += "|" + row[i].value_or("null");
      out.push_back(line);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  // Grouped by the column itself (GROUP BY 1 would group its text, where -0 is not 0).
  auto where = " FROM " + sql_table(t) + " WHERE event_timestamp BETWEEN $1 AND $2 GROUP BY ";
  auto by_score = want("SELECT score::text, count(id), count(DISTINCT amount)" + where + "score");
  BOOST_REQUIRE_EQUAL(by_score.size(), 4u); // 0, 1.5, NaN, NULL
  r.report = "by_score";
  r.mode = "pull"; // count_distinct
  auto a = post(1, r);
  BOOST_TEST(got(a) == by_score, "by_score: " << a.brief());
  auto by_amount = want("SELECT amount::text, count(id)" + where + "amount");
  BOOST_REQUIRE_EQUAL(by_amount.size(), 2u); // 1, 2.5
  r.report = "by_amount";
  for (auto mode : {"pull", "pushdown"}) {
    r.mode = mode;
    a = post(2, r);
    BOOST_TEST(got(a) == by_amount, mode << ": " << a.brief());
  }
  // Spelled the way wharf spells a span (PostgreSQL shows any one of a group's values).
  auto by_span = want("SELECT justify_interval(span)::text, count(id), count(DISTINCT span)"
                      + where + "span");
  BOOST_REQUIRE_EQUAL(by_span.size(), 4u); // 1 day, 1 mon, 29 days, 2 days
  r.report = "by_span";
  r.mode = "pull";
  a = post(3, r);
  BOOST_TEST(got(a) == by_span, "by_span: " << a.brief());
  auto by_span_n = want("SELECT justify_interval(span)::text, count(id)" + where + "span");
  r.report = "by_span_n";
  r.mode = "pushdown";
  a = post(2, r);
  BOOST_TEST(got(a) == by_span_n, "by_span_n: " << a.brief());
  r.report = "by_tags";
  for (auto mode : {"pull", "pushdown"}) {
    r.mode = mode;
    a = post(1, r);
    BOOST_TEST(a.status == 400, mode << ": " << a.brief());
    BOOST_TEST(a.str("error_message").find("jsonb") != std::string::npos, a.brief());
  }
  // The node still serves after refusing.
  r.report = "by_amount";
  r.mode = "auto";
  a = post(1, r);
  BOOST_TEST(got(a) == by_amount, "auto: " << a.brief());
}

// A node's sessions may default to other settings than the coordinator's (PGTZ, PGOPTIONS,
// a role's or database's settings). The coordinator's TimeZone, DateStyle and IntervalStyle
// decide how the request's bare dates are read and how keys are spelled, on every node,
// and floats travel exactly whatever extra_float_digits says: otherwise n3 would select
// another day's rows (the window is read in UTC+14), spell its timestamptz and interval keys
// its own way (splitting groups) and round its float keys to one digit (merging them).
BOOST_AUTO_TEST_CASE(every_node_reads_with_the_coordinators_session_settings) {
  if (!pg)
    return;
  auto t = table("settings");
  load(t, 20000, 40, 31);
  exec("ALTER TABLE " + sql_table(t) + " ADD COLUMN at timestamptz, ADD COLUMN at_hour"
       " timestamptz, ADD COLUMN span interval, ADD COLUMN score float8");
  exec("UPDATE " + sql_table(t) + " SET at = event_timestamp::timestamptz, at_hour ="
       " date_trunc('hour', event_timestamp)::timestamptz, span = make_interval(hours =>"
       " (id % 5)::int * 6), score = 1 + (id % 9) / 97.0");
  dsn_of[3] = dsn_with_options("-c TimeZone=Pacific/Kiritimati -c DateStyle=SQL,DMY"
                               " -c IntervalStyle=sql_standard -c extra_float_digits=-15");
  std::string reports;
  for (auto [name, keys] : {std::pair<const char*, const char*>{"by_hour", "\"at_hour\", \"span\""},
                            {"by_score", "\"score\""}})
    reports += std::string("[[reports]]\nname = \"") + name + "\"\ntable = " + toml_quote(t)
               + "\npartition_column = \"id\"\ntime_column = \"at\"\ngroup_by = [" + keys
               + "]\naggregates = [\"count(id) AS n\"]\n";
  start(3, reports);
  dsn_of.clear();
  report_request r;
  r.start = "2025-03-01"; // bare dates: midnights in the coordinator's TimeZone
  r.end = "2025-03-08";
  r.partitions = 12; // every node reads some
  // Rows as "v1|v2|...": floats as %.17g (the two sides spell them differently).
  auto spell = [](const std::string& v, bool is_float) {
    if (!is_float)
      return v;
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", std::stod(v));
    return std::string(buf);
  };
  auto got = [&](const http_answer& a) {
    BOOST_REQUIRE_MESSAGE(a.status == 200 && a.body.contains("rows"), a.brief() << "\n" << logs());
    std::vector<std::string> out;
    for (auto& row : a.body.at("rows")) {
      std::string line;
      for (auto& v : row)
        line += (v.is_string()         ? v.get<std::string>()
                 : v.is_number_float() ? spell(v.dump(), true)
                                       : v.dump())
                + "|";
      out.push_back(line);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  auto want = [&](const std::string& keys, bool float_key) {
    auto res = pg->query("SELECT " + keys + ", count(id) FROM " + sql_table(t)
                           + " WHERE at BETWEEN $1 AND $2 GROUP BY " + keys,
                         {r.start, r.end});
    BOOST_REQUIRE_MESSAGE(res, test::why(res));
    std::vector<std::string> out;
    for (auto& row : res->rows) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i)
        line += spell(row[i].value_or("null"), float_key && i == 0) + "|";
      out.push_back(line);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  auto by_hour = want("at_hour, justify_interval(span)", false);
  BOOST_REQUIRE_GT(by_hour.size(), 100u);
  auto by_score = want("score", true);
  BOOST_REQUIRE_EQUAL(by_score.size(), 9u);
  for (auto mode : {"pull", "pushdown"}) {
    r.mode = mode;
    r.report = "by_hour";
    auto a = post(1, r);
    BOOST_TEST(got(a) == by_hour, mode << ": " << a.brief());
    r.report = "by_score";
    a = post(2, r);
    BOOST_TEST(got(a) == by_score, mode << ": " << a.brief());
  }
}

// -- 8. stored results --

// A result stored by reference outlives a restart of its node, and the restarted node still
// expires it: it finds the results an earlier run stored and gives each one more
// result_ttl_s (their age was not stored).
BOOST_AUTO_TEST_CASE(stored_results_survive_a_restart_and_still_expire) {
  if (!pg)
    return;
  auto t = table("kept");
  load(t, 8000, 400, 21); // ~2,700 groups: over large_result_rows, so stored
  define("kept_report", t);
  start(1);
  report_request r;
  r.report = "kept_report";
  r.mode = "pull";
  auto a = expect_truth(1, r);
  auto ref = a.str("result_ref");
  BOOST_REQUIRE_MESSAGE(!ref.empty(), "phase: a result over large_result_rows: " << a.brief());
  auto rows_path = "/v1/reports/" + ref + "/rows?offset=0&limit=10";
  // A restart with the default TTL (an hour): the result is still there.
  restart(1);
  auto p = http(1, "GET", rows_path);
  BOOST_TEST(p.status == 200, "phase: GET " << rows_path << " after a restart: " << p.brief());
  BOOST_TEST(p.num("total_rows") == a.num("total_rows"), p.brief());
  // A restart with a TTL of 1 s: found at start-up, gone one tick (10 s) later.
  analytics_toml = "result_ttl_s = 1\n";
  restart(1);
  BOOST_TEST(eventually([&] { return (p = http(1, "GET", rows_path)).status == 404; }, 60s),
             "phase: GET " << rows_path << " never 404 after result_ttl_s = 1: " << p.brief()
                           << "\n" << logs());
  BOOST_TEST(p.str("error_code") == "NOT_FOUND", p.brief());
  BOOST_TEST(node(1).log().find("stored results from an earlier run: 1 (they expire in 1 s)")
               != std::string::npos,
             node(1).log_tail());
}

BOOST_AUTO_TEST_SUITE_END()
