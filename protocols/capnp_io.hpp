#pragma once
/// Small helpers for Cap'n Proto messages carried as bytes (analytics payloads, RPC bridge):
/// flat bytes out of a builder, and a bounded reader over untrusted bytes (traversal limited
/// to 4x the size, nesting 32, copied to aligned memory when needed). Only for .cpp files:
/// pulls capnp in.

#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include <capnp/message.h>
#include <capnp/serialize.h>

namespace wharf::protocols {

inline std::string message_bytes(capnp::MessageBuilder& mb) {
  auto segments = mb.getSegmentsForOutput();
  std::string out(capnp::computeSerializedSizeInWords(segments) * sizeof(capnp::word), '\0');
  kj::ArrayOutputStream os(kj::arrayPtr(reinterpret_cast<kj::byte*>(out.data()), out.size()));
  capnp::writeMessage(os, segments);
  return out;
}

/// Reads one message from `bytes` (which must outlive the reader when aligned).
class flat_reader {
public:
  explicit flat_reader(std::string_view bytes, uint64_t max_bytes = uint64_t{1} << 30) {
    if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0 || bytes.size() > max_bytes)
      return;
    auto count = bytes.size() / sizeof(capnp::word);
    kj::ArrayPtr<const capnp::word> words;
    if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) == 0) {
      words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(bytes.data()), count);
    } else {
      copy_ = kj::heapArray<capnp::word>(count);
      std::memcpy(copy_.begin(), bytes.data(), bytes.size());
      words = copy_;
    }
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = 4 * count + 64;
    opts.nestingLimit = 32;
    try {
      reader_ = std::make_unique<capnp::FlatArrayMessageReader>(words, opts);
    } catch (const kj::Exception&) {
      reader_.reset();
    }
  }
  bool ok() const { return reader_ != nullptr; }
  /// Throws kj::Exception on malformed content; callers catch it.
  template <class T>
  typename T::Reader get() {
    return reader_->getRoot<T>();
  }

private:
  kj::Array<capnp::word> copy_;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
};

} // namespace wharf::protocols
