#pragma once
/// A bounded server-to-client stream: actors push encoded items (progress today,
/// subscriptions tomorrow), the node's KJ loop takes them one at a time and forwards each to
/// the client, asking for the next only once the client took the previous one. Memory is
/// bounded by `capacity`: when the client falls behind, `drop_oldest` keeps the newest items
/// (right for progress, where only the latest counts) and `refuse` makes `push` return false
/// so the producer can slow down (backpressure). Counts what it dropped or refused.
///
/// Shared by the producing actor and the loop through `std::shared_ptr<feed>`, which may
/// travel in local CAF messages (never serialized).

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>

namespace kj {
template <typename T>
class Promise;
template <typename T>
class CrossThreadPromiseFulfiller;
template <typename T>
class Own;
} // namespace kj

namespace wharf::runtime {

class feed {
public:
  enum class overflow : uint8_t {
    drop_oldest, ///< a full feed drops its oldest item to take the new one
    refuse,      ///< a full feed refuses the new item (push returns false)
  };

  feed(size_t capacity, overflow policy);
  ~feed();
  feed(const feed&) = delete;
  feed& operator=(const feed&) = delete;

  /// Any thread. False when the item was refused (full under `refuse`) or the feed is closed.
  bool push(std::string item);

  /// Any thread: no item after those already queued. Idempotent.
  void close();

  /// Any thread: whether `push` would take an item now without dropping one.
  bool writable() const;

  /// Items waiting now.
  size_t size() const;

  /// Items dropped or refused so far.
  uint64_t dropped() const noexcept { return dropped_.load(); }

  /// KJ loop thread, one caller at a time: the next item, or nullopt once closed and
  /// drained.
  kj::Promise<std::optional<std::string>> next();

private:
  void wake(); // mtx_ held
  mutable std::mutex mtx_;
  size_t capacity_;
  overflow policy_;
  std::deque<std::string> items_;
  bool closed_ = false;
  std::atomic<uint64_t> dropped_{0};
  std::unique_ptr<kj::Own<kj::CrossThreadPromiseFulfiller<void>>> waiter_;
};

} // namespace wharf::runtime

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<wharf::runtime::feed>)
