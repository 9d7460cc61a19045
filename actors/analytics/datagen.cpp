#include "actors/analytics/datagen.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <unistd.h>

#include "runtime/core/types.hpp"
#include "runtime/pg/pg_connection.hpp"

namespace wharf::actors {

namespace {

const char* const types[event_type_count] = {"page_view", "click",  "purchase", "signup",
                                             "login",     "logout", "search",   "share"};

// 2025-01-01 00:00:00 in PostgreSQL's binary timestamp unit: microseconds since 2000-01-01
// (9132 days: 25 years, 7 of them leap years).
constexpr int64_t year_start_us = int64_t{9132} * 86400 * 1000000;
constexpr int64_t year_us = int64_t{365} * 86400 * 1000000;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Binary COPY writer: every field is a big-endian length followed by big-endian data.
class copy_buffer {
public:
  void header() {
    static const char sig[] = "PGCOPY\n\377\r\n\0";
    buf_.append(sig, 11);
    u32(0); // flags
    u32(0); // header extension length
  }
  void row_start(int16_t fields) { u16(static_cast<uint16_t>(fields)); }
  void int8(int64_t v) {
    u32(8);
    u64(static_cast<uint64_t>(v));
  }
  void float8(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    u32(8);
    u64(bits);
  }
  void text(const char* s) {
    auto n = std::strlen(s);
    u32(static_cast<uint32_t>(n));
    buf_.append(s, n);
  }
  void trailer() { u16(0xffff); }
  size_t size() const { return buf_.size(); }
  const char* data() const { return buf_.data(); }
  void clear() { buf_.clear(); }

private:
  void u16(uint16_t v) {
    char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
    buf_.append(b, 2);
  }
  void u32(uint32_t v) {
    char b[4];
    for (int i = 0; i < 4; ++i)
      b[i] = static_cast<char>(v >> (24 - 8 * i));
    buf_.append(b, 4);
  }
  void u64(uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i)
      b[i] = static_cast<char>(v >> (56 - 8 * i));
    buf_.append(b, 8);
  }
  std::string buf_;
};

caf::error rollback(runtime::pg_connection& pg, caf::error err) {
  auto r = pg.query("ROLLBACK");
  (void) r; // deliberate ignore: the original error is the one worth reporting
  return err;
}

} // namespace

const char* const* event_types() noexcept {
  return types;
}

caf::expected<datagen_result> generate_user_events(runtime::pg_connection& pg,
                                                   const datagen_options& opts,
                                                   const std::function<void(uint64_t)>& progress) {
  using runtime::make_error;
  using runtime::runtime_errc;
  if (opts.users == 0)
    return make_error(runtime_errc::bad_request, "--users must be at least 1");
  if (opts.table.empty())
    return make_error(runtime_errc::bad_request, "--table must not be empty");
  auto t0 = std::chrono::steady_clock::now();
  auto table = pg.quote_identifier(opts.table);
  if (auto r = pg.query("BEGIN"); !r)
    return r.error();
  auto exists = pg.query("SELECT to_regclass($1) IS NOT NULL", {table});
  if (!exists)
    return rollback(pg, exists.error());
  if (exists->rows.at(0).at(0) == std::string("t")) {
    if (!opts.replace)
      return rollback(pg, make_error(runtime_errc::bad_request,
                                     "table " + opts.table
                                       + " already exists; pass --replace to drop and reload it"));
    if (auto r = pg.query("DROP TABLE " + table); !r)
      return rollback(pg, r.error());
  }
  auto create = pg.query("CREATE TABLE " + table
                         + " (id bigint NOT NULL, user_id bigint, event_type text, "
                           "event_timestamp timestamp, value double precision)");
  if (!create)
    return rollback(pg, create.error());
  if (auto err = pg.copy_begin("COPY " + table + " FROM STDIN (FORMAT binary)"))
    return rollback(pg, err);
  copy_buffer buf;
  buf.header();
  for (uint64_t id = 1; id <= opts.rows; ++id) {
    auto h = splitmix64(opts.seed * 0x100000001b3ULL ^ id);
    auto h2 = splitmix64(h);
    auto h3 = splitmix64(h2);
    auto h4 = splitmix64(h3);
    buf.row_start(5);
    buf.int8(static_cast<int64_t>(id));
    buf.int8(static_cast<int64_t>(1 + h % opts.users));
    buf.text(types[h2 % event_type_count]);
    buf.int8(year_start_us + static_cast<int64_t>(h3 % static_cast<uint64_t>(year_us)));
    buf.float8(static_cast<double>(h4 >> 11) * 0x1.0p-53 * 1000.0);
    if (buf.size() >= (1u << 20)) {
      if (auto err = pg.copy_data(buf.data(), buf.size()))
        return rollback(pg, err);
      buf.clear();
      if (progress)
        progress(id);
    }
  }
  buf.trailer();
  if (auto err = pg.copy_data(buf.data(), buf.size()))
    return rollback(pg, err);
  if (auto err = pg.copy_end())
    return rollback(pg, err);
  // The key after the load: one sorted index build instead of a b-tree insert per row.
  if (auto r = pg.query("ALTER TABLE " + table + " ADD PRIMARY KEY (id)"); !r)
    return rollback(pg, r.error());
  if (auto r = pg.query("COMMIT"); !r)
    return r.error();
  // Planner statistics now, so the first report's auto mode sees real row and group counts.
  if (auto r = pg.query("ANALYZE " + table); !r)
    return r.error();
  datagen_result res;
  res.rows = opts.rows;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

int run_datagen(const std::string& dataset, std::string dsn, const datagen_options& opts) {
  if (dataset != "user_events") {
    std::cerr << "wharf datagen: unknown dataset \"" << dataset << "\" (known: user_events)\n";
    return 2;
  }
  if (dsn.empty())
    if (auto env = std::getenv("WHARF_PG_DSN"))
      dsn = env;
  if (dsn.empty()) {
    std::cerr << "wharf datagen: no database: pass --dsn or set WHARF_PG_DSN\n";
    return 2;
  }
  auto pg = runtime::pg_connection::open(dsn);
  if (!pg) {
    std::cerr << "wharf datagen: " << runtime::describe(pg.error()) << '\n';
    return 1;
  }
  bool tty = isatty(2);
  auto progress = [&](uint64_t rows) {
    if (tty)
      std::cerr << "\r" << rows << " / " << opts.rows << " rows" << std::flush;
  };
  auto res = generate_user_events(**pg, opts, progress);
  if (tty)
    std::cerr << "\r" << std::string(40, ' ') << "\r";
  if (!res) {
    std::cerr << "wharf datagen: " << runtime::describe(res.error()) << '\n';
    return runtime::code_of(res.error()) == runtime::runtime_errc::bad_request ? 2 : 1;
  }
  std::cout << "loaded " << res->rows << " rows into " << opts.table << " in " << res->seconds
            << " s (" << static_cast<uint64_t>(res->rows / std::max(res->seconds, 1e-9))
            << " rows/s), seed " << opts.seed << ", " << opts.users << " users\n";
  return 0;
}

} // namespace wharf::actors
