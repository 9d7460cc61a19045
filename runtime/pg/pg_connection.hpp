#pragma once
/// A libpq connection: connect, parameterized queries, binary COPY FROM STDIN. Blocking: use it
/// from a CLI, a test, a detached actor or an I/O thread, never on a CAF scheduler thread or
/// the KJ loop. Errors carry PostgreSQL's SQLSTATE and message ("pg: 42P07: relation ...").
/// Values always travel as bound parameters; identifiers go through `quote_identifier`.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <string_view>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace wharf::runtime {

/// Error codes of the PostgreSQL adapter (category `pg_errc_category`). The context is the
/// message ("SQLSTATE: message" when the server sent one) and, when it did, the SQLSTATE as a
/// second element (`runtime::sqlstate_of` reads it; nothing parses it out of the text).
enum class pg_errc : uint8_t {
  none = 0,
  connection, ///< cannot connect, or the connection broke
  query,      ///< the server rejected a statement
  copy,       ///< COPY failed part-way
  cancelled,  ///< the statement was cancelled (by `cancel` or the caller)
};

constexpr caf::atom_value pg_errc_category = caf::atom("pg");

const char* to_string(pg_errc x) noexcept;

caf::error make_error(pg_errc code, std::string context);

/// With the server's SQLSTATE (when not empty) as the context's second element.
caf::error make_error(pg_errc code, std::string context, std::string sqlstate);

/// A binary-format result kept as libpq holds it: no copy per cell.
class pg_binary_result {
public:
  pg_binary_result();
  pg_binary_result(pg_binary_result&&) noexcept;
  pg_binary_result& operator=(pg_binary_result&&) noexcept;
  ~pg_binary_result();
  int rows() const;
  int columns() const;
  bool is_null(int row, int col) const;
  /// The cell in PostgreSQL's binary format (empty view for NULL).
  std::string_view value(int row, int col) const;
  /// The type OID of a column.
  uint32_t type(int col) const;

private:
  friend class pg_connection;
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Rows of a text-format result: `rows[r][c]`, nullopt for SQL NULL.
struct pg_rows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

class pg_connection {
public:
  /// Connects with a libpq connection string (e.g. "host=127.0.0.1 port=5432 dbname=x").
  [[nodiscard]] static caf::expected<std::unique_ptr<pg_connection>> open(const std::string& dsn);

  ~pg_connection();
  pg_connection(const pg_connection&) = delete;
  pg_connection& operator=(const pg_connection&) = delete;

  /// Runs one statement with `$1..$n` bound as text parameters; returns its rows (empty for
  /// commands).
  [[nodiscard]] caf::expected<pg_rows> query(const std::string& sql,
                                             const std::vector<std::string>& params = {});

  /// Like `query`, but the result comes in binary format (`resultFormat = 1`).
  [[nodiscard]] caf::expected<pg_binary_result>
  query_binary(const std::string& sql, const std::vector<std::string>& params = {});

  /// Runs `COPY (...) TO STDOUT (FORMAT binary)` and calls `row` with each CopyData message
  /// (the 19-byte file header arrives glued to the first row; the trailer is the last
  /// message). `row` returns false to stop early: the statement is then cancelled and the
  /// connection drained, and the error is `pg_errc::cancelled`.
  [[nodiscard]] caf::error copy_out(const std::string& sql,
                                    const std::function<bool(std::string_view)>& row);

  /// Asks the server to cancel the statement running on this connection. Thread-safe: may
  /// be called from any thread while another one waits in `query`/`copy_out`. Blocking (a
  /// short connection to the server).
  void cancel();

  /// Starts `COPY ... FROM STDIN (FORMAT binary)`; then `copy_data` any number of times and
  /// `copy_end` once. On error the COPY is aborted and the error returned.
  [[nodiscard]] caf::error copy_begin(const std::string& sql);
  [[nodiscard]] caf::error copy_data(const char* data, size_t size);
  [[nodiscard]] caf::error copy_end();

  /// `"name"` with quotes doubled, safe to splice as an identifier; "a.b" is quoted per part.
  static std::string quote_identifier(const std::string& name);

  /// False once the connection broke (then open a new one).
  bool healthy() const;

private:
  struct impl;
  explicit pg_connection(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// A per-node pool of connections to one DSN (sessions are named `application_name=wharf`
/// unless the DSN names one). `acquire` hands out an idle connection or opens
/// a new one (at most `max_size` exist; callers beyond wait). A lease returns its connection
/// on destruction unless it broke. Thread-safe; blocking (use from detached actors).
class pg_pool : public std::enable_shared_from_this<pg_pool> {
public:
  class lease {
  public:
    lease() = default;
    lease(lease&&) noexcept = default;
    lease& operator=(lease&&) noexcept;
    ~lease();
    pg_connection* operator->() const { return conn_.get(); }
    pg_connection& operator*() const { return *conn_; }
    explicit operator bool() const { return conn_ != nullptr; }

  private:
    friend class pg_pool;
    void release();
    std::shared_ptr<pg_pool> pool_;
    std::unique_ptr<pg_connection> conn_;
  };

  static std::shared_ptr<pg_pool> make(std::string dsn, size_t max_size);

  [[nodiscard]] caf::expected<lease> acquire();

  const std::string& dsn() const { return dsn_; }
  size_t open_connections() const;
  size_t idle_connections() const;

private:
  pg_pool(std::string dsn, size_t max_size) : dsn_(std::move(dsn)), max_size_(max_size) {}
  void give_back(std::unique_ptr<pg_connection> c);
  std::string dsn_;
  size_t max_size_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pg_connection>> idle_;
  size_t open_ = 0;
};

} // namespace wharf::runtime
