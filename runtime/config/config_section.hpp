#pragma once
/// One declaration per configuration key, used three ways: to read a TOML file, to dump the
/// effective configuration back as TOML (`--dump-config`) and to document every key with its
/// default (`--help`). The node's own sections and every service module's sections go through
/// it, so all of them fail alike: the first bad key is named in one line
/// ("node.toml: cluster.heartbeat_ms: expected an integer"), and keys or sections nobody
/// declared are rejected ("echo.greting: unknown key").
///
/// A module declares its sections in `service_module::configure(config_root&)`:
///
/// ```cpp
/// root.section("echo", "the example module of tests/module", [&](config_section& s) {
///   s.text("greeting", cfg_.greeting, "what the echo service says first");
///   s.port("port", cfg_.port, "its TCP listener, 0 = a free port");
/// });
/// ```
///
/// The same callback runs in every mode; in `read` mode a key absent from the file leaves the
/// variable at its default. Not thread-safe; used while the node starts.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>

namespace wharf::runtime {

/// What the declarations do.
enum class config_mode : uint8_t {
  read,     ///< parse the file's values into the variables (checked)
  dump,     ///< write the variables as TOML
  describe, ///< write one help line per key with its default
};

class config_root;

/// The keys of one table (`[name]`, or one entry of `[[name]]`).
class config_section {
public:
  /// A string.
  config_section& text(std::string_view key, std::string& out, std::string_view help);
  /// A string that must be one of `choices` (listed in errors and help).
  config_section& choice(std::string_view key, std::string& out,
                         const std::vector<std::string>& choices, std::string_view help);
  /// An integer in [lo, hi].
  config_section& integer(std::string_view key, int64_t& out, int64_t lo, int64_t hi,
                          std::string_view help);
  /// A non-negative integer in [lo, hi].
  config_section& count(std::string_view key, size_t& out, size_t lo, size_t hi,
                        std::string_view help);
  /// A port, 0..65535.
  config_section& port(std::string_view key, uint16_t& out, std::string_view help);
  /// Integer milliseconds in [lo, hi] (key names end in `_ms`).
  config_section& millis(std::string_view key, std::chrono::milliseconds& out, int64_t lo,
                         int64_t hi, std::string_view help);
  /// Integer seconds in [lo, hi] (key names end in `_s`).
  config_section& seconds(std::string_view key, std::chrono::seconds& out, int64_t lo,
                          int64_t hi, std::string_view help);
  /// A boolean.
  config_section& flag(std::string_view key, bool& out, std::string_view help);
  /// An array of strings.
  config_section& texts(std::string_view key, std::vector<std::string>& out,
                        std::string_view help);
  /// Read mode: fails the key unless the file set it ("required").
  config_section& required(std::string_view key);

  /// Read mode: a check of the values read so far; `err` (when set) is reported against
  /// `key` unless an earlier key failed already. Other modes ignore it.
  void check(std::string_view key, const std::string& err);

  /// The mode the declarations run in.
  config_mode mode() const noexcept;

  struct impl; ///< private to config_section.cpp
  explicit config_section(impl& x) : impl_(x) {}

private:
  impl& impl_;
};

/// The whole file: named sections and arrays of tables. Every section or array must be
/// declared by the node or a module; anything else in the file is an error.
class config_root {
public:
  /// Read mode over TOML text; `source` names it in messages ("node.toml").
  [[nodiscard]] static std::unique_ptr<config_root> reader(const std::string& toml_text,
                                                           const std::string& source,
                                                           caf::error& err);
  /// Dump or describe mode; the output accumulates in `text()`.
  static std::unique_ptr<config_root> writer(config_mode mode);

  ~config_root();
  config_root(const config_root&) = delete;
  config_root& operator=(const config_root&) = delete;

  /// `[name]`: runs `f` over its keys (in read mode over an empty table when absent).
  void section(std::string_view name, std::string_view summary,
               const std::function<void(config_section&)>& f);

  /// `[[name]]`: runs `f` over each entry. Read mode appends one element per table of the
  /// file (starting from `T{}`); dump mode writes each element; describe mode documents the
  /// keys of a `T{}`.
  template <class T>
  void tables(std::string_view name, std::string_view summary, std::vector<T>& xs,
              const std::function<void(config_section&, T&)>& f) {
    if (mode() == config_mode::read) {
      auto n = begin_tables(name, summary);
      for (size_t i = 0; i < n; ++i) {
        T x{};
        if (table(i, [&](config_section& s) { f(s, x); }))
          xs.push_back(std::move(x));
      }
    } else if (mode() == config_mode::dump) {
      begin_tables(name, summary);
      for (size_t i = 0; i < xs.size(); ++i)
        table(i, [&](config_section& s) { f(s, xs[i]); });
    } else {
      begin_tables(name, summary);
      T x{};
      table(0, [&](config_section& s) { f(s, x); });
    }
  }

  config_mode mode() const noexcept;

  /// Read mode: the first error, giving unknown sections and keys precedence over bad values
  /// (a typo is the likelier mistake). Call after every declaration ran.
  [[nodiscard]] caf::error finish();

  /// Dump and describe modes: what the declarations wrote.
  std::string text() const;

  struct impl; ///< private to config_section.cpp

private:
  config_root();
  size_t begin_tables(std::string_view name, std::string_view summary);
  // Runs `f` over entry `i` of the current array; false when the entry failed to read.
  bool table(size_t i, const std::function<void(config_section&)>& f);
  std::unique_ptr<impl> impl_;
};

} // namespace wharf::runtime
