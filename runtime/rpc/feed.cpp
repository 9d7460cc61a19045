#include "runtime/rpc/feed.hpp"

#include <kj/async.h>

namespace wharf::runtime {

feed::feed(size_t capacity, overflow policy)
  : capacity_(capacity == 0 ? 1 : capacity), policy_(policy) {}

feed::~feed() = default;

bool feed::push(std::string item) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_)
    return false;
  if (items_.size() >= capacity_) {
    ++dropped_;
    if (policy_ == overflow::refuse)
      return false;
    items_.pop_front();
  }
  items_.push_back(std::move(item));
  wake();
  return true;
}

void feed::close() {
  std::lock_guard<std::mutex> guard{mtx_};
  closed_ = true;
  wake();
}

bool feed::writable() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return !closed_ && items_.size() < capacity_;
}

size_t feed::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return items_.size();
}

void feed::wake() {
  if (waiter_) {
    (*waiter_)->fulfill();
    waiter_.reset();
  }
}

kj::Promise<std::optional<std::string>> feed::next() {
  std::unique_lock<std::mutex> guard{mtx_};
  if (!items_.empty()) {
    auto x = std::move(items_.front());
    items_.pop_front();
    return std::optional<std::string>{std::move(x)};
  }
  if (closed_)
    return std::optional<std::string>{};
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  waiter_ = std::make_unique<kj::Own<kj::CrossThreadPromiseFulfiller<void>>>(kj::mv(paf.fulfiller));
  guard.unlock();
  return paf.promise.then([this] { return next(); });
}

} // namespace wharf::runtime
