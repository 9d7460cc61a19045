#pragma once
/// Node-wide counters and gauges, rendered in Prometheus text format by the HTTP endpoint.
/// Written by actors and read by the KJ thread: every field is atomic or mutex-guarded.
/// Owned by `node` (one per process) and handed to components as a shared pointer.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/messages.hpp"

namespace wharf::runtime {

/// How a metric behaves (Prometheus `# TYPE`).
enum class metric_kind : uint8_t { counter, gauge };

/// One counter or gauge a component added (see `node_metrics::get`). Updated from any thread.
class metric {
public:
  void add(int64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  void set(int64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
  int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
  std::atomic<int64_t> v_{0};
};

/// Label name/value pairs of one metric, e.g. {{"listener", "pgwire"}}.
using metric_labels = std::vector<std::pair<std::string, std::string>>;

class node_metrics {
public:
  std::atomic<uint64_t> messages_in{0};   ///< cluster envelopes received
  std::atomic<uint64_t> messages_out{0};  ///< cluster envelopes sent
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> decode_errors{0}; ///< malformed envelopes rejected
  std::atomic<uint64_t> restarts{0};      ///< child restarts by any supervisor
  std::atomic<uint64_t> escalations{0};   ///< supervisors that gave up (restart intensity)
  std::atomic<uint64_t> members_alive{0};
  std::atomic<uint64_t> members_down{0};
  std::atomic<uint64_t> admin_requests{0};
  std::atomic<uint64_t> peer_down_failures{0}; ///< pending requests failed because a peer died
  std::atomic<uint64_t> state_commits{0};      ///< RocksDB write batches committed
  std::atomic<uint64_t> state_writes{0};       ///< actor state writes acknowledged
  std::atomic<bool> cluster_listening{false};  ///< the cluster port is published
  std::atomic<bool> serving{false};            ///< /health answers 200

  /// Replaces the per-actor mailbox sizes (path -> size).
  void mailboxes(std::map<std::string, uint64_t> sizes);

  /// The metric `wharf_<name>{labels}`, created at 0 on first use; later calls with the same
  /// name and labels return the same one, valid as long as this object. Modules and
  /// listeners add theirs here; they show in `/metrics` (with `help`) and in `stats`.
  /// Counter names end in `_total`. Thread-safe.
  metric& get(std::string_view name, metric_kind kind, std::string_view help,
              const metric_labels& labels = {});

  /// Counters as (name, value) pairs, names without the `wharf_` prefix.
  std::vector<protocols::stat> snapshot() const;

  /// Prometheus text exposition (version 0.0.4); every metric name starts with `wharf_`.
  std::string prometheus(const std::string& node_name) const;

private:
  std::vector<protocols::stat> builtin() const;
  struct family {
    metric_kind kind;
    std::string help;
    std::map<std::string, std::unique_ptr<metric>> series; // by rendered labels
  };
  mutable std::mutex mtx_;
  std::map<std::string, uint64_t> mailboxes_;
  std::map<std::string, family> families_; // by name
};

} // namespace wharf::runtime
