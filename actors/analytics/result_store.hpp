#pragma once
/// Large results, stored and fetched by reference (internal to actors/analytics).
///
/// A result of more than `analytics.large_result_rows` rows is stored as pages of
/// `result_page_rows` rows, written to RocksDB (through the state store, `system/store`, in
/// the module's column family `analytics_results`) in one atomic batch under
/// `services/analytics/results/<report id>`: keys "meta" and "page/NNNNNNNN". Every page
/// carries the columns, so a page-aligned fetch is served as stored. The service answers
/// `fetch` calls from them, drops a result when its report expires, and adopts the results an
/// earlier run left (before a node or actor restart) so that they expire too.
///
/// The static members serve a report's coordinator; a `result_store` object belongs to the
/// service actor: call it from that actor only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/analytics/sorted_partial.hpp"
#include "protocols/analytics.capnp.h"
#include "runtime/core/types.hpp"

namespace wharf::actors::analytics_detail {

namespace rp = wharf::reports;

class result_store {
public:
  /// `self` (the service, which owns this) sends the requests; `root` is the node's root
  /// supervisor, which finds the state store; results an earlier run left expire `ttl` after
  /// they are found; `ours(id)` tells whether this run stores result `id`.
  result_store(caf::event_based_actor* self, caf::actor root, std::chrono::seconds ttl,
               std::function<bool(const std::string&)> ours);

  // -- storing (a report's coordinator) --

  /// The entries that store `total` with its `cols`: every page, encoded on two threads, and
  /// "meta". Errors: INTERNAL when a page cannot be encoded.
  static caf::expected<std::map<std::string, std::string>>
  entries(const sorted_partial& total,
          const std::vector<std::pair<std::string, std::string>>& cols);

  /// Writes `entries` as result `id` in one atomic batch through `self`, then calls `saved`,
  /// or `failed` with an INTERNAL error (no state store, or the write failed).
  static void save(caf::event_based_actor* self, const caf::actor& root, const std::string& id,
                   std::map<std::string, std::string> entries, std::function<void()> saved,
                   std::function<void(const caf::error&)> failed);

  // -- the service --

  /// Answers a `FetchRequest` with a `ResultPage` (rows [offset, offset + limit), or an error
  /// code: INVALID_ARGUMENT, NOT_FOUND, INTERNAL).
  void fetch(rp::FetchRequest::Reader req, std::function<void(std::string)> reply);

  /// Finds the results an earlier run of this service stored and gives each one more `ttl`
  /// (then drop_expired drops them): without this they would stay on disk for good once the
  /// node restarted. Searches once, and again after a failed search.
  void adopt_leftovers();

  /// Drops the adopted results whose time is up.
  void drop_expired(std::chrono::steady_clock::time_point now);

  /// Deletes result `id` (its meta and `pages` pages).
  void drop(const std::string& id, uint64_t pages);

private:
  void fetch_pages(caf::actor store, std::string ref, uint64_t offset, uint64_t limit,
                   std::string meta, std::function<void(std::string)> reply);
  void adopt(const caf::actor& store, const std::string& id);
  void sweep_legacy(const caf::actor& store);

  caf::event_based_actor* self_;
  caf::actor root_;
  std::chrono::seconds ttl_;
  std::function<bool(const std::string&)> ours_;
  // Results stored by an earlier run of this service (before a node or actor restart): the
  // time they expire at and their page count. Their age was not stored, so each gets one
  // more `result_ttl` from the moment it is found.
  struct leftover {
    std::chrono::steady_clock::time_point expires;
    uint64_t pages = 0;
  };
  std::map<std::string, leftover> leftovers_;
  enum { not_yet, searching, adopted } adoption_ = not_yet; // the store searched for leftovers
};

} // namespace wharf::actors::analytics_detail
