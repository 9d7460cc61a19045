#pragma once
/// A libpq connection: connect, parameterized queries, binary COPY FROM STDIN. Blocking: use it
/// from a CLI, a test, a detached actor or an I/O thread, never on a CAF scheduler thread or
/// the KJ loop. Errors carry PostgreSQL's SQLSTATE and message ("pg: 42P07: relation ...").
/// Values always travel as bound parameters; identifiers go through `quote_identifier`.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace wharf::runtime {

/// Error codes of the PostgreSQL adapter (category `pg_errc_category`). The context string
/// starts with the SQLSTATE when the server sent one.
enum class pg_errc : uint8_t {
  none = 0,
  connection, ///< cannot connect, or the connection broke
  query,      ///< the server rejected a statement
  copy,       ///< COPY failed part-way
};

constexpr caf::atom_value pg_errc_category = caf::atom("pg");

const char* to_string(pg_errc x) noexcept;

caf::error make_error(pg_errc code, std::string context);

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

  /// Starts `COPY ... FROM STDIN (FORMAT binary)`; then `copy_data` any number of times and
  /// `copy_end` once. On error the COPY is aborted and the error returned.
  [[nodiscard]] caf::error copy_begin(const std::string& sql);
  [[nodiscard]] caf::error copy_data(const char* data, size_t size);
  [[nodiscard]] caf::error copy_end();

  /// `"name"` with quotes doubled, safe to splice as an identifier; "a.b" is quoted per part.
  std::string quote_identifier(const std::string& name) const;

private:
  struct impl;
  explicit pg_connection(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace wharf::runtime
