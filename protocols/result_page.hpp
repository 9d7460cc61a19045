#pragma once
/// Column-wise rows of a `ResultPage` (analytics.capnp): a checked reader for pages that come
/// off the network or a disk, and a writer that builds them. Only for .cpp files: pulls the
/// generated analytics schema in.
///
/// Reading: `page_view` checks the whole page once (every column holds `rowCount` values,
/// NULL flags are absent or one per row, text ends ascend within the bytes), so no value
/// access can run out of bounds afterwards; a malformed page gives `error()` and no rows.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/analytics.capnp.h"

namespace wharf::protocols {

/// The kind of one value of a page.
enum class value_kind : uint8_t { null, integer, floating, text, boolean };

/// The value kind a column of type `type` holds ("int", "float", "bool"; anything else text).
value_kind kind_of_type(std::string_view type) noexcept;

class page_view {
public:
  explicit page_view(reports::ResultPage::Reader page);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t rows() const { return rows_; }
  size_t columns() const { return cols_.size(); }

  /// The column's kind (never null).
  value_kind column_kind(size_t c) const { return cols_[c].kind; }
  bool is_null(size_t c, size_t r) const {
    return cols_[c].has_nulls && cols_[c].nulls[static_cast<unsigned>(r)];
  }
  /// `null` or the column's kind.
  value_kind kind(size_t c, size_t r) const {
    return is_null(c, r) ? value_kind::null : cols_[c].kind;
  }
  int64_t int_at(size_t c, size_t r) const {
    return cols_[c].ints[static_cast<unsigned>(r)];
  }
  double float_at(size_t c, size_t r) const {
    return cols_[c].floats[static_cast<unsigned>(r)];
  }
  bool bool_at(size_t c, size_t r) const {
    return cols_[c].bools[static_cast<unsigned>(r)];
  }
  std::string_view text_at(size_t c, size_t r) const {
    auto& col = cols_[c];
    auto end = col.ends[static_cast<unsigned>(r)];
    auto begin = r == 0 ? 0u : col.ends[static_cast<unsigned>(r - 1)];
    return std::string_view(col.bytes + begin, end - begin);
  }

private:
  void load(reports::ResultPage::Reader page);
  struct column {
    value_kind kind = value_kind::text;
    bool has_nulls = false;
    // List readers taken once: every get() of a list charges the reader's traversal limit.
    capnp::List<bool>::Reader nulls;
    capnp::List<int64_t>::Reader ints;
    capnp::List<double>::Reader floats;
    capnp::List<bool>::Reader bools;
    capnp::List<uint32_t>::Reader ends;
    const char* bytes = nullptr;
  };
  std::vector<column> cols_;
  size_t rows_ = 0;
  std::string error_;
};

/// Builds the column-wise rows of a page. A value must match its column's kind (a caller
/// bug otherwise: std::logic_error). A text column of a page holds at most 512 MiB (a
/// Cap'n Proto blob's limit, 2^29 - 1 bytes): more throws std::length_error.
class page_writer {
public:
  /// One column per type name (see kind_of_type).
  explicit page_writer(const std::vector<std::string>& types);

  void reserve(size_t rows);
  void put_null(size_t c);
  void put_int(size_t c, int64_t v);
  void put_float(size_t c, double v);
  void put_bool(size_t c, bool v);
  void put_text(size_t c, std::string_view v);

  /// Appends rows [from, to) of `v`; false (nothing appended) when its columns differ.
  bool append(const page_view& v, size_t from, size_t to);

  /// Rows so far (of the first column; every column must be filled alike).
  size_t rows() const { return cols_.empty() ? 0 : cols_[0].nulls.size(); }

  /// Sets `data` and `rowCount` of `out`.
  void write(reports::ResultPage::Builder out) const;

private:
  struct column {
    value_kind kind;
    std::vector<bool> nulls;
    bool any_null = false;
    std::vector<int64_t> ints;
    std::vector<double> floats;
    std::vector<bool> bools;
    std::string bytes;
    std::vector<uint32_t> ends;
  };
  column& at(size_t c, value_kind k);
  std::vector<column> cols_;
};

} // namespace wharf::protocols
