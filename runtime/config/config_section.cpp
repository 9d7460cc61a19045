#include "runtime/config/config_section.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "runtime/core/types.hpp"

namespace wharf::runtime {

namespace {

// TOML basic-string escaping: quotes, backslashes and control characters.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string list(const std::vector<std::string>& xs) {
  std::string out = "[";
  for (size_t i = 0; i < xs.size(); ++i)
    out += (i ? ", " : "") + quoted(xs[i]);
  return out + "]";
}

std::string alternatives(const std::vector<std::string>& xs) {
  std::string out;
  for (size_t i = 0; i < xs.size(); ++i)
    out += (i == 0 ? "" : i + 1 == xs.size() ? " or " : ", ") + xs[i];
  return out;
}

} // namespace

// -- root --

struct config_root::impl {
  config_mode mode = config_mode::read;
  std::string source;
  toml::table root;
  std::ostringstream out;
  std::vector<std::string> declared; // section and array names, in declaration order
  caf::error value_error;            // the first bad value
  caf::error unknown_error;          // the first undeclared key
  // The array `tables` works on.
  std::string array_name;
  const toml::array* array = nullptr;

  caf::error bad(const std::string& where, const std::string& msg) const {
    return make_error(runtime_errc::bad_config, source + ": " + where + ": " + msg);
  }
  void value_fails(const std::string& where, const std::string& msg) {
    if (!value_error)
      value_error = bad(where, msg);
  }
  void unknown(const std::string& where, const std::string& msg) {
    if (!unknown_error)
      unknown_error = bad(where, msg);
  }
};

// -- one table --

struct config_section::impl {
  config_root::impl& root;
  std::string name;                 // "node", "items[2]"
  const toml::table* table;         // read mode: null when the file has none
  std::set<std::string> declared;
  std::string first_failed;         // key of the first failure here (read mode)

  std::string where(std::string_view key) const { return name + "." + std::string(key); }

  // Read mode: the key's node, or null when absent (or not read).
  const toml::node* node(std::string_view key) {
    declared.emplace(key);
    if (root.mode != config_mode::read || !table)
      return nullptr;
    return table->get(key);
  }

  void fail(std::string_view key, const std::string& msg) {
    if (first_failed.empty())
      first_failed = std::string(key);
    root.value_fails(where(key), msg);
  }

  // Dump and describe modes: one line per key.
  void write(std::string_view key, const std::string& value, std::string_view help) {
    auto& os = root.out;
    if (root.mode == config_mode::dump) {
      os << key << " = " << value << '\n';
    } else if (root.mode == config_mode::describe) {
      std::string lhs = "  " + std::string(key) + " = " + value;
      if (lhs.size() < 34)
        lhs.resize(34, ' ');
      else
        lhs += "  ";
      os << lhs << help << '\n';
    }
  }
};

config_mode config_section::mode() const noexcept {
  return impl_.root.mode;
}

config_section& config_section::text(std::string_view key, std::string& out,
                                     std::string_view help) {
  if (auto* n = impl_.node(key)) {
    if (auto v = n->value<std::string>())
      out = *v;
    else
      impl_.fail(key, "expected a string");
  }
  impl_.write(key, quoted(out), help);
  return *this;
}

config_section& config_section::choice(std::string_view key, std::string& out,
                                       const std::vector<std::string>& choices,
                                       std::string_view help) {
  std::string got = out;
  if (auto* n = impl_.node(key)) {
    if (auto v = n->value<std::string>()) {
      got = *v;
      if (std::find(choices.begin(), choices.end(), got) == choices.end()) {
        std::vector<std::string> q;
        for (auto& c : choices)
          q.push_back(quoted(c));
        impl_.fail(key, "expected " + alternatives(q) + ", got " + quoted(got));
      } else {
        out = got;
      }
    } else {
      impl_.fail(key, "expected a string");
    }
  }
  std::string doc(help);
  doc += " (" + alternatives(choices) + ")";
  impl_.write(key, quoted(out), doc);
  return *this;
}

config_section& config_section::integer(std::string_view key, int64_t& out, int64_t lo,
                                        int64_t hi, std::string_view help) {
  if (auto* n = impl_.node(key)) {
    auto v = n->as_integer();
    if (!v)
      impl_.fail(key, "expected an integer");
    else if (v->get() < lo || v->get() > hi)
      impl_.fail(key, "must be " + std::to_string(lo) + ".." + std::to_string(hi) + ", got "
                        + std::to_string(v->get()));
    else
      out = v->get();
  }
  impl_.write(key, std::to_string(out), help);
  return *this;
}

config_section& config_section::count(std::string_view key, size_t& out, size_t lo, size_t hi,
                                      std::string_view help) {
  auto v = static_cast<int64_t>(out);
  integer(key, v, static_cast<int64_t>(lo), static_cast<int64_t>(hi), help);
  out = static_cast<size_t>(v);
  return *this;
}

config_section& config_section::port(std::string_view key, uint16_t& out,
                                     std::string_view help) {
  int64_t v = out;
  integer(key, v, 0, 65535, help);
  out = static_cast<uint16_t>(v);
  return *this;
}

namespace {

// A duration as an integer count of its unit.
template <class Duration>
config_section& duration(config_section& s, std::string_view key, Duration& out, int64_t lo,
                         int64_t hi, std::string_view help) {
  int64_t v = out.count();
  s.integer(key, v, lo, hi, help);
  out = Duration{v};
  return s;
}

} // namespace

config_section& config_section::millis(std::string_view key, std::chrono::milliseconds& out,
                                       int64_t lo, int64_t hi, std::string_view help) {
  return duration(*this, key, out, lo, hi, help);
}

config_section& config_section::seconds(std::string_view key, std::chrono::seconds& out,
                                        int64_t lo, int64_t hi, std::string_view help) {
  return duration(*this, key, out, lo, hi, help);
}

config_section& config_section::flag(std::string_view key, bool& out, std::string_view help) {
  if (auto* n = impl_.node(key)) {
    if (auto v = n->as_boolean())
      out = v->get();
    else
      impl_.fail(key, "expected true or false");
  }
  impl_.write(key, out ? "true" : "false", help);
  return *this;
}

config_section& config_section::texts(std::string_view key, std::vector<std::string>& out,
                                      std::string_view help) {
  if (auto* n = impl_.node(key)) {
    auto arr = n->as_array();
    std::vector<std::string> xs;
    bool ok = arr != nullptr;
    if (ok)
      for (auto& el : *arr) {
        auto v = el.value<std::string>();
        if (!v) {
          ok = false;
          break;
        }
        xs.push_back(*v);
      }
    if (ok)
      out = std::move(xs);
    else
      impl_.fail(key, "expected an array of strings");
  }
  impl_.write(key, list(out), help);
  return *this;
}

config_section& config_section::required(std::string_view key) {
  if (impl_.root.mode == config_mode::read && (!impl_.table || !impl_.table->get(key)))
    impl_.fail(key, "required");
  return *this;
}

void config_section::check(std::string_view key, const std::string& err) {
  if (impl_.root.mode == config_mode::read && !err.empty() && impl_.first_failed.empty())
    impl_.fail(key, err);
}

// -- root --

config_root::config_root() : impl_(std::make_unique<impl>()) {}

config_root::~config_root() = default;

std::unique_ptr<config_root> config_root::reader(const std::string& toml_text,
                                                 const std::string& source, caf::error& err) {
  std::unique_ptr<config_root> r{new config_root};
  r->impl_->source = source;
  try {
    r->impl_->root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    err = make_error(runtime_errc::bad_config, os.str());
    return nullptr;
  }
  return r;
}

std::unique_ptr<config_root> config_root::writer(config_mode mode) {
  std::unique_ptr<config_root> r{new config_root};
  r->impl_->mode = mode;
  return r;
}

config_mode config_root::mode() const noexcept {
  return impl_->mode;
}

namespace {

// Read mode: keys of `t` nobody declared.
void check_keys(config_root::impl& root, const std::string& name, const toml::table* t,
                const std::set<std::string>& declared);

} // namespace

void config_root::section(std::string_view name, std::string_view summary,
                          const std::function<void(config_section&)>& f) {
  auto& r = *impl_;
  r.declared.emplace_back(name);
  const toml::table* t = nullptr;
  if (r.mode == config_mode::read) {
    if (auto* n = r.root.get(name)) {
      t = n->as_table();
      if (!t) {
        r.value_fails(std::string(name), "expected a table");
        return;
      }
    }
  } else {
    r.out << (r.out.tellp() > 0 ? "\n" : "") << "[" << name << "]";
    if (r.mode == config_mode::describe)
      r.out << "  " << summary;
    r.out << '\n';
  }
  config_section::impl s{r, std::string(name), t, {}, {}};
  config_section sec{s};
  f(sec);
  if (r.mode == config_mode::read)
    check_keys(r, s.name, t, s.declared);
}

size_t config_root::begin_tables(std::string_view name, std::string_view summary) {
  auto& r = *impl_;
  r.declared.emplace_back(name);
  r.array_name = std::string(name);
  r.array = nullptr;
  if (r.mode == config_mode::describe)
    r.out << (r.out.tellp() > 0 ? "\n" : "") << "[[" << name << "]]  " << summary
          << " (repeatable)\n";
  if (r.mode != config_mode::read)
    return 0;
  auto* n = r.root.get(name);
  if (!n)
    return 0;
  r.array = n->as_array();
  if (!r.array) {
    r.value_fails(std::string(name),
                  "expected an array of tables ([[" + std::string(name) + "]])");
    return 0;
  }
  return r.array->size();
}

bool config_root::table(size_t i, const std::function<void(config_section&)>& f) {
  auto& r = *impl_;
  auto name = r.array_name + "[" + std::to_string(i) + "]";
  const toml::table* t = nullptr;
  if (r.mode == config_mode::read) {
    t = r.array ? r.array->get(i)->as_table() : nullptr;
    if (!t) {
      r.value_fails(name, "expected a table");
      return false;
    }
  } else if (r.mode == config_mode::dump) {
    r.out << "\n[[" << r.array_name << "]]\n";
  }
  config_section::impl s{r, name, t, {}, {}};
  config_section sec{s};
  f(sec);
  if (r.mode == config_mode::read)
    check_keys(r, name, t, s.declared);
  return s.first_failed.empty();
}

caf::error config_root::finish() {
  auto& r = *impl_;
  if (r.mode != config_mode::read)
    return caf::none;
  for (auto& [k, v] : r.root) {
    std::string name{k.str()};
    if (std::find(r.declared.begin(), r.declared.end(), name) == r.declared.end())
      r.unknown(name, "unknown section (expected " + alternatives(r.declared) + ")");
  }
  if (r.unknown_error)
    return r.unknown_error;
  return r.value_error;
}

std::string config_root::text() const {
  return impl_->out.str();
}

namespace {

void check_keys(config_root::impl& root, const std::string& name, const toml::table* t,
                const std::set<std::string>& declared) {
  if (!t)
    return;
  for (auto& [k, v] : *t) {
    std::string key{k.str()};
    if (declared.count(key) == 0)
      root.unknown(name + "." + key, "unknown key");
  }
}

} // namespace

} // namespace wharf::runtime
