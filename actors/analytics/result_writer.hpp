#pragma once
/// Writes report rows as an aligned table, CSV or JSON, from a response's inline rows or
/// column-wise result pages (protocols/result_page.hpp), as `wharf report` prints them:
/// - csv: a header line of column names, then one line a row; numbers in their shortest exact
///   form, booleans `true`/`false`, NULL as an empty field, text quoted (RFC 4180) when it
///   holds a comma, quote or line break, or is empty;
/// - json: the response's fields, then `"rows"`: one array of typed values a row;
/// - table: columns padded to their widest value, NULL shown as `NULL` (kept in memory until
///   `end`, so meant for small results).
/// Not thread-safe, except `csv_text`, which only reads its page.

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocols/analytics.capnp.h"
#include "protocols/result_page.hpp"

namespace wharf::actors {

/// One result value, from an inline row or a column-wise page (text views the source).
struct cell_ref {
  protocols::value_kind kind = protocols::value_kind::null;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string_view t;
};

cell_ref cell_of(reports::Value::Reader v);
cell_ref cell_of(const protocols::page_view& v, size_t col, size_t row);

/// Appends one CSV field.
void append_csv(std::string& out, const cell_ref& v);

class result_writer {
public:
  enum class format : uint8_t { table, csv, json };

  /// "table", "csv" or "json"; nullopt otherwise.
  static std::optional<format> parse_format(std::string_view s);

  result_writer(std::ostream& os, format f) : os_(os), format_(f) {}

  /// Starts the output: column names, and for json the response's fields (`meta`, whose
  /// "rows" is left out).
  void begin(capnp::List<reports::Column>::Reader cols, const nlohmann::json& meta);

  /// Inline rows of a response.
  void rows(capnp::List<reports::Row>::Reader rows);

  /// The rows of a checked page.
  void rows(const protocols::page_view& v);

  /// Ends the output (table: writes it all) and flushes.
  void end();

  /// Rows written.
  uint64_t count() const { return count_; }

  bool csv() const { return format_ == format::csv; }

  /// CSV only: a checked page's rows as CSV text. Reads nothing but `v`, so it can run on
  /// another thread while this writer writes the previous page.
  static std::string csv_text(const protocols::page_view& v);

  /// Writes rows made by csv_text.
  void write_csv(const std::string& text, size_t rows);

private:
  template <class Cell>
  static void csv_row(std::string& out, size_t n, Cell cell);
  template <class Cell>
  void row(size_t n, Cell cell);
  void flush_buffer();

  std::ostream& os_;
  format format_;
  std::vector<std::string> names_;
  std::vector<std::vector<std::string>> table_;
  std::string buf_; // csv output, written in 1 MB pieces
  uint64_t count_ = 0;
};

} // namespace wharf::actors
