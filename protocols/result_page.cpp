#include "protocols/result_page.hpp"

#include <cstring>
#include <stdexcept>

#include <kj/exception.h>

namespace wharf::protocols {

value_kind kind_of_type(std::string_view type) noexcept {
  if (type == "int")
    return value_kind::integer;
  if (type == "float")
    return value_kind::floating;
  if (type == "bool")
    return value_kind::boolean;
  return value_kind::text;
}

namespace {

value_kind kind_of_values(reports::ColumnValues::Which w) {
  switch (w) {
    case reports::ColumnValues::INTS: return value_kind::integer;
    case reports::ColumnValues::FLOATS: return value_kind::floating;
    case reports::ColumnValues::BOOLS: return value_kind::boolean;
    case reports::ColumnValues::TEXTS: return value_kind::text;
  }
  return value_kind::null; // a union member this version does not know
}

constexpr size_t max_text_bytes = (size_t{1} << 29) - 1; // Cap'n Proto's largest blob

} // namespace

page_view::page_view(reports::ResultPage::Reader page) {
  load(page);
}

void page_view::load(reports::ResultPage::Reader page) {
  auto fail = [this](std::string why) {
    cols_.clear();
    rows_ = 0;
    error_ = "malformed result page: " + why;
  };
  try {
    auto data = page.getData();
    rows_ = page.getRowCount();
    if (data.size() == 0 && page.hasRows())
      return fail("rows as List(Row): a page stored by an older version (run the report again)");
    if (data.size() == 0 && rows_ > 0)
      return fail(std::to_string(rows_) + " rows without any value column");
    if (data.size() != page.getColumns().size() && data.size() != 0)
      return fail(std::to_string(data.size()) + " value columns for "
                  + std::to_string(page.getColumns().size()) + " columns");
    for (auto values : data) {
      column col;
      col.kind = kind_of_values(values.which());
      auto where = "column " + std::to_string(cols_.size());
      if (col.kind == value_kind::null)
        return fail(where + " has values of an unknown kind");
      col.nulls = values.getNulls();
      auto nulls = col.nulls.size();
      if (nulls != 0 && nulls != rows_)
        return fail(where + " has " + std::to_string(nulls) + " NULL flags for "
                    + std::to_string(rows_) + " rows");
      col.has_nulls = nulls != 0;
      size_t n = 0;
      switch (col.kind) {
        case value_kind::integer:
          col.ints = values.getInts();
          n = col.ints.size();
          break;
        case value_kind::floating:
          col.floats = values.getFloats();
          n = col.floats.size();
          break;
        case value_kind::boolean:
          col.bools = values.getBools();
          n = col.bools.size();
          break;
        case value_kind::text: {
          auto t = values.getTexts();
          col.ends = t.getEnds();
          auto bytes = t.getBytes();
          col.bytes = reinterpret_cast<const char*>(bytes.begin());
          n = col.ends.size();
          uint32_t prev = 0;
          for (auto e : col.ends) {
            if (e < prev || e > bytes.size())
              return fail(where + " has text offsets out of order or past its bytes");
            prev = e;
          }
          break;
        }
        case value_kind::null: break;
      }
      if (n != rows_)
        return fail(where + " has " + std::to_string(n) + " values for " + std::to_string(rows_)
                    + " rows");
      cols_.push_back(col);
    }
  } catch (const kj::Exception& e) {
    fail(e.getDescription().cStr());
  }
}

page_writer::page_writer(const std::vector<std::string>& types) {
  for (auto& t : types)
    cols_.push_back(column{kind_of_type(t), {}, false, {}, {}, {}, {}, {}});
}

void page_writer::reserve(size_t rows) {
  for (auto& c : cols_) {
    c.nulls.reserve(rows);
    switch (c.kind) {
      case value_kind::integer: c.ints.reserve(rows); break;
      case value_kind::floating: c.floats.reserve(rows); break;
      case value_kind::boolean: c.bools.reserve(rows); break;
      case value_kind::text: c.ends.reserve(rows); break;
      case value_kind::null: break;
    }
  }
}

page_writer::column& page_writer::at(size_t c, value_kind k) {
  auto& col = cols_.at(c);
  if (k != col.kind)
    throw std::logic_error("page_writer: a value of the wrong kind for column "
                           + std::to_string(c));
  col.nulls.push_back(false);
  return col;
}

void page_writer::put_null(size_t c) {
  auto& col = cols_.at(c);
  col.nulls.push_back(true);
  col.any_null = true;
  switch (col.kind) {
    case value_kind::integer: col.ints.push_back(0); break;
    case value_kind::floating: col.floats.push_back(0); break;
    case value_kind::boolean: col.bools.push_back(false); break;
    case value_kind::text: col.ends.push_back(static_cast<uint32_t>(col.bytes.size())); break;
    case value_kind::null: break;
  }
}

void page_writer::put_int(size_t c, int64_t v) {
  at(c, value_kind::integer).ints.push_back(v);
}

void page_writer::put_float(size_t c, double v) {
  at(c, value_kind::floating).floats.push_back(v);
}

void page_writer::put_bool(size_t c, bool v) {
  at(c, value_kind::boolean).bools.push_back(v);
}

void page_writer::put_text(size_t c, std::string_view v) {
  auto& col = cols_.at(c);
  if (col.bytes.size() + v.size() > max_text_bytes)
    throw std::length_error("a text column of a result page would exceed 512 MiB");
  at(c, value_kind::text);
  col.bytes.append(v);
  col.ends.push_back(static_cast<uint32_t>(col.bytes.size()));
}

bool page_writer::append(const page_view& v, size_t from, size_t to) {
  if (v.columns() != cols_.size() || to > v.rows() || from > to)
    return false;
  for (size_t c = 0; c < cols_.size(); ++c)
    if (v.column_kind(c) != cols_[c].kind)
      return false;
  for (size_t c = 0; c < cols_.size(); ++c) {
    for (size_t r = from; r < to; ++r) {
      if (v.is_null(c, r)) {
        put_null(c);
        continue;
      }
      switch (cols_[c].kind) {
        case value_kind::integer: put_int(c, v.int_at(c, r)); break;
        case value_kind::floating: put_float(c, v.float_at(c, r)); break;
        case value_kind::boolean: put_bool(c, v.bool_at(c, r)); break;
        case value_kind::text: put_text(c, v.text_at(c, r)); break;
        case value_kind::null: break;
      }
    }
  }
  return true;
}

void page_writer::write(reports::ResultPage::Builder out) const {
  auto n = static_cast<unsigned>(rows());
  for (auto& c : cols_)
    if (c.nulls.size() != n)
      throw std::logic_error("page_writer: columns of different lengths");
  out.setRowCount(n);
  auto data = out.initData(static_cast<unsigned>(cols_.size()));
  for (unsigned i = 0; i < cols_.size(); ++i) {
    auto& c = cols_[i];
    auto d = data[i];
    if (c.any_null) {
      auto nulls = d.initNulls(n);
      for (unsigned r = 0; r < n; ++r)
        nulls.set(r, c.nulls[r]);
    }
    switch (c.kind) {
      case value_kind::integer: {
        auto xs = d.initInts(n);
        for (unsigned r = 0; r < n; ++r)
          xs.set(r, c.ints[r]);
        break;
      }
      case value_kind::floating: {
        auto xs = d.initFloats(n);
        for (unsigned r = 0; r < n; ++r)
          xs.set(r, c.floats[r]);
        break;
      }
      case value_kind::boolean: {
        auto xs = d.initBools(n);
        for (unsigned r = 0; r < n; ++r)
          xs.set(r, c.bools[r]);
        break;
      }
      case value_kind::text: {
        auto t = d.initTexts();
        auto bytes = t.initBytes(static_cast<unsigned>(c.bytes.size()));
        if (!c.bytes.empty())
          std::memcpy(bytes.begin(), c.bytes.data(), c.bytes.size());
        auto ends = t.initEnds(n);
        for (unsigned r = 0; r < n; ++r)
          ends.set(r, c.ends[r]);
        break;
      }
      case value_kind::null: break;
    }
  }
}

} // namespace wharf::protocols
