#include "runtime/pg/pg_connection.hpp"

#include <algorithm>
#include <cctype>

#include <libpq-fe.h>

#include <caf/make_message.hpp>

namespace wharf::runtime {

const char* to_string(pg_errc x) noexcept {
  switch (x) {
    case pg_errc::none: return "none";
    case pg_errc::connection: return "pg_connection";
    case pg_errc::query: return "pg_query";
    case pg_errc::copy: return "pg_copy";
    case pg_errc::cancelled: return "pg_cancelled";
  }
  return "unknown";
}

caf::error make_error(pg_errc code, std::string context) {
  return caf::error{static_cast<uint8_t>(code), pg_errc_category,
                    caf::make_message(std::move(context))};
}

caf::error make_error(pg_errc code, std::string context, std::string sqlstate) {
  if (sqlstate.empty())
    return make_error(code, std::move(context));
  return caf::error{static_cast<uint8_t>(code), pg_errc_category,
                    caf::make_message(std::move(context), std::move(sqlstate))};
}

namespace {

struct result_deleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, result_deleter>;

// libpq messages end in a newline and may span lines ("...\n\tIs the server running...");
// errors here are one line.
std::string trim(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\t') {
      if (!out.empty() && out.back() != ' ')
        out += ' ';
      continue;
    }
    out += c;
  }
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  return out;
}

constexpr const char* query_canceled = "57014"; // SQLSTATE of a cancelled statement

// What failed: "SQLSTATE: message" from a failed result (or the connection's message), and
// the SQLSTATE on its own, which travels as a field of the error.
struct failure {
  std::string message;
  std::string sqlstate;
};

failure describe_failure(PGconn* c, const PGresult* r) {
  failure f;
  std::string msg;
  if (r) {
    if (auto s = PQresultErrorField(r, PG_DIAG_SQLSTATE))
      f.sqlstate = s;
    if (auto m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY))
      msg = m;
  }
  if (msg.empty())
    msg = trim(PQerrorMessage(c));
  f.message = f.sqlstate.empty() ? msg : f.sqlstate + ": " + msg;
  return f;
}

caf::error failed(pg_errc code, failure f) {
  return make_error(code, std::move(f.message), std::move(f.sqlstate));
}

} // namespace

struct pg_connection::impl {
  PGconn* conn = nullptr;
  PGcancel* canceller = nullptr;
  std::mutex cancel_mtx;
  ~impl() {
    if (canceller)
      PQfreeCancel(canceller);
    if (conn)
      PQfinish(conn);
  }
};

struct pg_binary_result::impl {
  result_ptr res;
};

pg_binary_result::pg_binary_result() : impl_(std::make_unique<impl>()) {}
pg_binary_result::pg_binary_result(pg_binary_result&&) noexcept = default;
pg_binary_result& pg_binary_result::operator=(pg_binary_result&&) noexcept = default;
pg_binary_result::~pg_binary_result() = default;

int pg_binary_result::rows() const {
  return impl_->res ? PQntuples(impl_->res.get()) : 0;
}

int pg_binary_result::columns() const {
  return impl_->res ? PQnfields(impl_->res.get()) : 0;
}

bool pg_binary_result::is_null(int row, int col) const {
  return PQgetisnull(impl_->res.get(), row, col) != 0;
}

std::string_view pg_binary_result::value(int row, int col) const {
  if (is_null(row, col))
    return {};
  return std::string_view(PQgetvalue(impl_->res.get(), row, col),
                          static_cast<size_t>(PQgetlength(impl_->res.get(), row, col)));
}

uint32_t pg_binary_result::type(int col) const {
  return PQftype(impl_->res.get(), col);
}

pg_connection::pg_connection(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

pg_connection::~pg_connection() = default;

caf::expected<std::unique_ptr<pg_connection>> pg_connection::open(const std::string& dsn) {
  auto p = std::make_unique<impl>();
  p->conn = PQconnectdb(dsn.c_str());
  if (p->conn == nullptr)
    return make_error(pg_errc::connection, "out of memory");
  if (PQstatus(p->conn) != CONNECTION_OK)
    return make_error(pg_errc::connection, trim(PQerrorMessage(p->conn)));
  // Server NOTICEs (e.g. "table does not exist, skipping") would go to stderr raw.
  PQsetNoticeProcessor(p->conn, [](void*, const char*) {}, nullptr);
  p->canceller = PQgetCancel(p->conn);
  return std::unique_ptr<pg_connection>(new pg_connection(std::move(p)));
}

caf::expected<pg_rows> pg_connection::query(const std::string& sql,
                                            const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (auto& v : params)
    values.push_back(v.c_str());
  result_ptr r{PQexecParams(impl_->conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0)};
  auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
    return failed(PQstatus(impl_->conn) == CONNECTION_OK ? pg_errc::query : pg_errc::connection,
                  describe_failure(impl_->conn, r.get()));
  pg_rows out;
  if (st == PGRES_TUPLES_OK) {
    int nf = PQnfields(r.get()), nt = PQntuples(r.get());
    for (int c = 0; c < nf; ++c)
      out.columns.emplace_back(PQfname(r.get(), c));
    out.rows.reserve(static_cast<size_t>(nt));
    for (int i = 0; i < nt; ++i) {
      std::vector<std::optional<std::string>> row;
      for (int c = 0; c < nf; ++c) {
        if (PQgetisnull(r.get(), i, c))
          row.emplace_back(std::nullopt);
        else
          row.emplace_back(std::string(PQgetvalue(r.get(), i, c),
                                       static_cast<size_t>(PQgetlength(r.get(), i, c))));
      }
      out.rows.push_back(std::move(row));
    }
  }
  return out;
}

caf::expected<pg_binary_result> pg_connection::query_binary(const std::string& sql,
                                                           const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (auto& v : params)
    values.push_back(v.c_str());
  result_ptr r{PQexecParams(impl_->conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 1)};
  auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    auto f = describe_failure(impl_->conn, r.get());
    if (f.sqlstate == query_canceled)
      return failed(pg_errc::cancelled, std::move(f));
    return failed(PQstatus(impl_->conn) == CONNECTION_OK ? pg_errc::query : pg_errc::connection,
                  std::move(f));
  }
  pg_binary_result out;
  out.impl_->res = std::move(r);
  return out;
}

caf::error pg_connection::copy_out(const std::string& sql,
                                   const std::function<bool(std::string_view)>& row) {
  result_ptr r{PQexec(impl_->conn, sql.c_str())};
  if (!r || PQresultStatus(r.get()) != PGRES_COPY_OUT)
    return failed(PQstatus(impl_->conn) == CONNECTION_OK ? pg_errc::query : pg_errc::connection,
                  describe_failure(impl_->conn, r.get()));
  r.reset();
  bool stopped = false;
  caf::error err;
  while (true) {
    char* buf = nullptr;
    int n = PQgetCopyData(impl_->conn, &buf, 0);
    if (n < 0) {
      if (n == -2)
        err = make_error(pg_errc::copy, trim(PQerrorMessage(impl_->conn)));
      break; // -1: done; the final result follows
    }
    bool go = stopped || row(std::string_view(buf, static_cast<size_t>(n)));
    PQfreemem(buf);
    if (!go && !stopped) {
      stopped = true;
      cancel(); // keep draining until the server stops sending
    }
  }
  while (result_ptr res{PQgetResult(impl_->conn)}) {
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK && !err && !stopped) {
      auto f = describe_failure(impl_->conn, res.get());
      err = failed(f.sqlstate == query_canceled ? pg_errc::cancelled : pg_errc::copy, std::move(f));
    }
  }
  if (stopped)
    return make_error(pg_errc::cancelled, "57014: stopped by the reader", query_canceled);
  if (!err && PQstatus(impl_->conn) != CONNECTION_OK)
    err = make_error(pg_errc::connection, trim(PQerrorMessage(impl_->conn)));
  return err;
}

void pg_connection::cancel() {
  std::lock_guard<std::mutex> guard{impl_->cancel_mtx};
  if (!impl_->canceller)
    return;
  char errbuf[256];
  PQcancel(impl_->canceller, errbuf, sizeof(errbuf));
}

bool pg_connection::healthy() const {
  return impl_->conn && PQstatus(impl_->conn) == CONNECTION_OK
         && PQtransactionStatus(impl_->conn) == PQTRANS_IDLE;
}

caf::error pg_connection::copy_begin(const std::string& sql) {
  result_ptr r{PQexec(impl_->conn, sql.c_str())};
  if (!r || PQresultStatus(r.get()) != PGRES_COPY_IN)
    return failed(pg_errc::copy, describe_failure(impl_->conn, r.get()));
  return caf::none;
}

caf::error pg_connection::copy_data(const char* data, size_t size) {
  if (PQputCopyData(impl_->conn, data, static_cast<int>(size)) != 1) {
    auto err = make_error(pg_errc::copy, trim(PQerrorMessage(impl_->conn)));
    // Leave the connection usable: abort the COPY and drain its result.
    PQputCopyEnd(impl_->conn, "client error");
    while (result_ptr r{PQgetResult(impl_->conn)}) {
    }
    return err;
  }
  return caf::none;
}

caf::error pg_connection::copy_end() {
  if (PQputCopyEnd(impl_->conn, nullptr) != 1)
    return make_error(pg_errc::copy, trim(PQerrorMessage(impl_->conn)));
  caf::error err;
  while (result_ptr r{PQgetResult(impl_->conn)}) {
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK && !err)
      err = failed(pg_errc::copy, describe_failure(impl_->conn, r.get()));
  }
  return err;
}

std::string pg_connection::quote_identifier(const std::string& name) {
  std::string out;
  size_t start = 0;
  while (true) {
    auto dot = name.find('.', start);
    auto part = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!out.empty())
      out += '.';
    out += '"';
    for (char c : part)
      out += c == '"' ? std::string("\"\"") : std::string(1, c);
    out += '"';
    if (dot == std::string::npos)
      break;
    start = dot + 1;
  }
  return out;
}

} // namespace wharf::runtime

namespace wharf::runtime {

std::shared_ptr<pg_pool> pg_pool::make(std::string dsn, size_t max_size) {
  // Name the connections so operators can tell wharf's sessions apart in pg_stat_activity
  // (a DSN that names its own application keeps it).
  if (dsn.find("application_name") == std::string::npos && dsn.find("://") == std::string::npos)
    dsn += " application_name=wharf";
  return std::shared_ptr<pg_pool>(new pg_pool(std::move(dsn), std::max<size_t>(1, max_size)));
}

caf::expected<pg_pool::lease> pg_pool::acquire() {
  {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait(guard, [this] { return !idle_.empty() || open_ < max_size_; });
    if (!idle_.empty()) {
      lease l;
      l.pool_ = shared_from_this();
      l.conn_ = std::move(idle_.back());
      idle_.pop_back();
      return l;
    }
    ++open_; // reserve the slot while connecting outside the lock
  }
  auto c = pg_connection::open(dsn_);
  if (!c) {
    std::lock_guard<std::mutex> guard{mtx_};
    --open_;
    cv_.notify_one();
    return c.error();
  }
  lease l;
  l.pool_ = shared_from_this();
  l.conn_ = std::move(*c);
  return l;
}

void pg_pool::give_back(std::unique_ptr<pg_connection> c) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (c && c->healthy())
    idle_.push_back(std::move(c));
  else
    --open_;
  cv_.notify_one();
}

size_t pg_pool::open_connections() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return open_;
}

size_t pg_pool::idle_connections() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return idle_.size();
}

void pg_pool::lease::release() {
  if (pool_ && conn_)
    pool_->give_back(std::move(conn_));
  pool_.reset();
  conn_.reset();
}

pg_pool::lease& pg_pool::lease::operator=(lease&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = std::move(other.pool_);
    conn_ = std::move(other.conn_);
  }
  return *this;
}

pg_pool::lease::~lease() {
  release();
}

} // namespace wharf::runtime
