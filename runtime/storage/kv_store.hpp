#pragma once
/// RocksDB adapter: one database per node, column families per concern. Thread-safe (RocksDB
/// is); every call does blocking disk I/O, so call it only from a detached actor or an I/O
/// thread, never from a CAF scheduler thread or the KJ loop.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/storage/column_family.hpp"

namespace wharf::runtime {

/// Column families of the node database: the node's own two, then the modules' families in
/// the order `open` got them (`kv_store::family` finds one by name).
enum class column : uint8_t {
  actor_state, ///< durable actor state: key = "<actor path>\0<key>"
  meta,        ///< node metadata (incarnation counter, schema version)
};

/// One atomic write: puts and deletes applied together or not at all.
struct write_batch {
  struct op {
    column cf;
    std::string key;
    std::optional<std::string> value; ///< nullopt = delete
  };
  std::vector<op> ops;
  void put(column cf, std::string key, std::string value) {
    ops.push_back({cf, std::move(key), std::move(value)});
  }
  void del(column cf, std::string key) { ops.push_back({cf, std::move(key), std::nullopt}); }
};

class kv_store {
public:
  /// Opens (creating if needed) the database in `dir` with the node's families and
  /// `families` (the modules'). Families the directory holds but nobody declared (a module
  /// no longer linked) are opened too and left alone. Fails with `storage_failure` and
  /// RocksDB's message (e.g. a lock held by another process, two families of one name).
  [[nodiscard]] static caf::expected<std::unique_ptr<kv_store>>
  open(const std::string& dir, const std::vector<column_family_spec>& families = {});

  /// The column of a module's family, or nullopt when none has that name.
  std::optional<column> family(const std::string& name) const;

  ~kv_store();
  kv_store(const kv_store&) = delete;
  kv_store& operator=(const kv_store&) = delete;

  /// Applies a batch atomically; with `sync` the WAL is fsync'd before returning.
  [[nodiscard]] caf::error write(const write_batch& batch, bool sync);

  /// Reads one key; `nullopt` when absent.
  [[nodiscard]] caf::expected<std::optional<std::string>> get(column cf, const std::string& key);

  /// All keys starting with `prefix`, with the prefix stripped.
  [[nodiscard]] caf::expected<std::map<std::string, std::string>>
  scan(column cf, const std::string& prefix);

  /// The state paths with keys under `parent` — every P starting with `parent` that has a key
  /// P + '\0' + ... (see state_prefix) — in key order, at most `limit` of them. Reads one
  /// key a path: it seeks past the rest of each path's keys.
  [[nodiscard]] caf::expected<std::vector<std::string>>
  paths_under(column cf, const std::string& parent, size_t limit);

  /// The directory this store lives in.
  const std::string& dir() const noexcept;

private:
  struct impl;
  explicit kv_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Key prefix under which the actor at `path` keeps its state.
std::string state_prefix(const std::string& path);

} // namespace wharf::runtime
