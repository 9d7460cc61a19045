#include "actors/analytics/result_writer.hpp"

#include <charconv>

namespace wharf::actors {

namespace rp = wharf::reports;
using protocols::value_kind;

cell_ref cell_of(rp::Value::Reader v) {
  cell_ref c;
  switch (v.which()) {
    case rp::Value::NULL_: break;
    case rp::Value::INT: c.kind = value_kind::integer; c.i = v.getInt(); break;
    case rp::Value::FLOAT: c.kind = value_kind::floating; c.f = v.getFloat(); break;
    case rp::Value::BOOL: c.kind = value_kind::boolean; c.b = v.getBool(); break;
    case rp::Value::TEXT:
      c.kind = value_kind::text;
      c.t = std::string_view(v.getText().cStr(), v.getText().size());
      break;
  }
  return c;
}

cell_ref cell_of(const protocols::page_view& v, size_t col, size_t row) {
  cell_ref c;
  c.kind = v.kind(col, row);
  switch (c.kind) {
    case value_kind::null: break;
    case value_kind::integer: c.i = v.int_at(col, row); break;
    case value_kind::floating: c.f = v.float_at(col, row); break;
    case value_kind::boolean: c.b = v.bool_at(col, row); break;
    case value_kind::text: c.t = v.text_at(col, row); break;
  }
  return c;
}

void append_csv(std::string& out, const cell_ref& v) {
  char buf[64];
  switch (v.kind) {
    case value_kind::null: return;
    case value_kind::integer: {
      auto r = std::to_chars(buf, buf + sizeof(buf), v.i);
      out.append(buf, r.ptr);
      return;
    }
    case value_kind::floating: {
      // Shortest text that reads back as the same double.
      auto r = std::to_chars(buf, buf + sizeof(buf), v.f);
      out.append(buf, r.ptr);
      return;
    }
    case value_kind::boolean: out += v.b ? "true" : "false"; return;
    case value_kind::text: {
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

namespace {

std::string table_field(const cell_ref& v) {
  if (v.kind == value_kind::null)
    return "NULL";
  if (v.kind == value_kind::text)
    return std::string(v.t);
  std::string out;
  append_csv(out, v);
  return out;
}

nlohmann::json json_of(const cell_ref& v) {
  switch (v.kind) {
    case value_kind::null: return nullptr;
    case value_kind::integer: return v.i;
    case value_kind::floating: return v.f;
    case value_kind::boolean: return v.b;
    case value_kind::text: return std::string(v.t);
  }
  return nullptr;
}

constexpr size_t csv_piece = 1u << 20; // csv output is written in pieces of this size

} // namespace

std::optional<result_writer::format> result_writer::parse_format(std::string_view s) {
  if (s == "table")
    return format::table;
  if (s == "csv")
    return format::csv;
  if (s == "json")
    return format::json;
  return std::nullopt;
}

void result_writer::begin(capnp::List<rp::Column>::Reader cols, const nlohmann::json& meta) {
  for (auto c : cols)
    names_.emplace_back(c.getName().cStr());
  if (format_ == format::csv) {
    for (size_t i = 0; i < names_.size(); ++i)
      os_ << (i ? "," : "") << names_[i];
    os_ << '\n';
  } else if (format_ == format::json) {
    auto m = meta;
    m.erase("rows");
    auto head = m.dump();
    head.pop_back(); // the closing brace: rows follow
    os_ << head << (m.empty() ? "" : ",") << "\"rows\":[";
  }
}

void result_writer::rows(capnp::List<rp::Row>::Reader rows) {
  for (auto r : rows) {
    auto vals = r.getValues();
    row(vals.size(), [&](size_t c) { return cell_of(vals[static_cast<unsigned>(c)]); });
  }
}

void result_writer::rows(const protocols::page_view& v) {
  for (size_t r = 0; r < v.rows(); ++r)
    row(v.columns(), [&](size_t c) { return cell_of(v, c, r); });
}

void result_writer::flush_buffer() {
  if (!buf_.empty()) {
    os_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    buf_.clear();
  }
}

void result_writer::end() {
  flush_buffer();
  if (format_ == format::json) {
    os_ << "\n]}\n";
  } else if (format_ == format::table) {
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

std::string result_writer::csv_text(const protocols::page_view& v) {
  std::string out;
  out.reserve(v.rows() * 48);
  for (size_t r = 0; r < v.rows(); ++r)
    csv_row(out, v.columns(), [&](size_t c) { return cell_of(v, c, r); });
  return out;
}

void result_writer::write_csv(const std::string& text, size_t rows) {
  flush_buffer();
  os_.write(text.data(), static_cast<std::streamsize>(text.size()));
  count_ += rows;
}

template <class Cell>
void result_writer::csv_row(std::string& out, size_t n, Cell cell) {
  for (size_t c = 0; c < n; ++c) {
    if (c)
      out += ',';
    append_csv(out, cell(c));
  }
  out += '\n';
}

template <class Cell>
void result_writer::row(size_t n, Cell cell) {
  if (format_ == format::csv) {
    csv_row(buf_, n, cell);
    if (buf_.size() >= csv_piece)
      flush_buffer();
  } else if (format_ == format::json) {
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

} // namespace wharf::actors
