#include "actors/analytics/cell_memory.hpp"

#include <algorithm>

namespace wharf::actors {

namespace {

constexpr size_t huge_page = size_t{2} << 20;

} // namespace

cells_ptr zeroed_cells(size_t words) {
  size_t bytes = words * 8;
  if (bytes < huge_page)
    return cells_ptr{static_cast<uint64_t*>(std::calloc(std::max<size_t>(words, 1), 8))};
  size_t len = (bytes + huge_page - 1) / huge_page * huge_page;
  void* raw = ::mmap(nullptr, len + huge_page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
    return cells_ptr{};
  // Keep the aligned middle: only 2 MiB aligned ranges can be backed by huge pages.
  auto at = reinterpret_cast<uintptr_t>(raw);
  auto aligned = (at + huge_page - 1) & ~(uintptr_t{huge_page} - 1);
  if (aligned > at)
    ::munmap(raw, aligned - at);
  if (auto tail = at + len + huge_page - (aligned + len); tail > 0)
    ::munmap(reinterpret_cast<void*>(aligned + len), tail);
  auto* p = reinterpret_cast<void*>(aligned);
  (void) ::madvise(p, len, MADV_HUGEPAGE);
  return cells_ptr{static_cast<uint64_t*>(p), cells_deleter{len}};
}

} // namespace wharf::actors
