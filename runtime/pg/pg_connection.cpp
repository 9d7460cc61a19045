#include "runtime/pg/pg_connection.hpp"

#include <libpq-fe.h>

#include <caf/make_message.hpp>

namespace wharf::runtime {

const char* to_string(pg_errc x) noexcept {
  switch (x) {
    case pg_errc::none: return "none";
    case pg_errc::connection: return "pg_connection";
    case pg_errc::query: return "pg_query";
    case pg_errc::copy: return "pg_copy";
  }
  return "unknown";
}

caf::error make_error(pg_errc code, std::string context) {
  return caf::error{static_cast<uint8_t>(code), pg_errc_category,
                    caf::make_message(std::move(context))};
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

// "SQLSTATE: message" from a failed result, or the connection's message.
std::string describe_failure(PGconn* c, const PGresult* r) {
  std::string state;
  std::string msg;
  if (r) {
    if (auto s = PQresultErrorField(r, PG_DIAG_SQLSTATE))
      state = s;
    if (auto m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY))
      msg = m;
  }
  if (msg.empty())
    msg = trim(PQerrorMessage(c));
  return state.empty() ? msg : state + ": " + msg;
}

} // namespace

struct pg_connection::impl {
  PGconn* conn = nullptr;
  ~impl() {
    if (conn)
      PQfinish(conn);
  }
};

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
    return make_error(PQstatus(impl_->conn) == CONNECTION_OK ? pg_errc::query : pg_errc::connection,
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

caf::error pg_connection::copy_begin(const std::string& sql) {
  result_ptr r{PQexec(impl_->conn, sql.c_str())};
  if (!r || PQresultStatus(r.get()) != PGRES_COPY_IN)
    return make_error(pg_errc::copy, describe_failure(impl_->conn, r.get()));
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
      err = make_error(pg_errc::copy, describe_failure(impl_->conn, r.get()));
  }
  return err;
}

std::string pg_connection::quote_identifier(const std::string& name) const {
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
