#pragma once
/// Zeroed memory for the cells of a dense aggregation table (see dense_table.hpp).
///
/// The dense table's cells. Rows hit them in random order, so with 4 KiB pages a table of
/// megabytes costs a TLB miss on most rows: a table of 2 MiB or more gets a mapping of its
/// own, 2 MiB aligned and advised as transparent huge pages (served on fault in Linux's
/// default "madvise" mode; where THP is off the advice changes nothing). Smaller tables come
/// from calloc. Either way the cells start zeroed.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include <sys/mman.h>

namespace wharf::actors {

/// Frees cells from either source.
struct cells_deleter {
  size_t mapped = 0; // bytes of the mapping, 0 for calloc's
  void operator()(uint64_t* p) const {
    if (mapped)
      ::munmap(p, mapped);
    else
      std::free(p);
  }
};
using cells_ptr = std::unique_ptr<uint64_t[], cells_deleter>;

/// `words` zeroed words, from a huge-page mapping of its own at 2 MiB and more, else from
/// calloc; null when no memory is left. Any thread; the caller owns the cells.
cells_ptr zeroed_cells(size_t words);

} // namespace wharf::actors
