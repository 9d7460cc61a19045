#include "runtime/storage/state_store.hpp"

#include <map>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "runtime/core/metrics.hpp"
#include "runtime/core/types.hpp"
#include "runtime/storage/kv_store.hpp"

namespace wharf::runtime {

namespace {

using string_map = std::map<std::string, std::string>;

constexpr size_t max_listed_paths = 100000;

void add_ops(write_batch& wb, column cf, const std::string& path, const string_map& puts,
             const std::vector<std::string>& dels) {
  auto prefix = state_prefix(path);
  for (auto& [k, v] : puts)
    wb.put(cf, prefix + k, v);
  for (auto& k : dels)
    wb.del(cf, prefix + k);
}

struct group_state {
  write_batch batch;
  std::vector<caf::response_promise> waiting;
  bool flush_scheduled = false;
};

} // namespace

caf::behavior state_store_impl(caf::event_based_actor* self, std::shared_ptr<kv_store> store,
                               durability_mode mode, std::shared_ptr<node_metrics> metrics) {
  auto group = std::make_shared<group_state>();
  auto count = [metrics](size_t writes) {
    if (metrics) {
      ++metrics->state_commits;
      metrics->state_writes += writes;
    }
  };
  // Commits the queued group (if any) and answers everyone waiting for it.
  auto flush = [=] {
    group->flush_scheduled = false;
    if (group->waiting.empty())
      return;
    auto err = store->write(group->batch, true);
    if (err)
      spdlog::error("state store: group commit of {} writes failed: {}", group->waiting.size(),
                    describe(err));
    else
      count(group->waiting.size());
    for (auto& rp : group->waiting) {
      if (err)
        rp.deliver(err);
      else
        rp.deliver(caf::ok_atom::value);
    }
    group->waiting.clear();
    group->batch = write_batch{};
  };
  // Told to stop with a group still queued: commit it first, so no caller is left waiting
  // for an answer that would never come.
  self->set_exit_handler([=](caf::exit_msg& em) {
    flush();
    self->quit(em.reason);
  });
  auto persist = [=](column cf, const std::string& path, const string_map& puts,
                     const std::vector<std::string>& dels) -> caf::result<caf::ok_atom> {
    if (mode == durability_mode::sync) {
      write_batch wb;
      add_ops(wb, cf, path, puts, dels);
      if (auto err = store->write(wb, true)) {
        spdlog::error("state store: persist of {} failed: {}", path, describe(err));
        return err;
      }
      count(1);
      return caf::ok_atom::value;
    }
    // Group commit: queue, and flush once the mailbox has delivered what is already there
    // (the flush message lines up behind every persist received so far).
    add_ops(group->batch, cf, path, puts, dels);
    group->waiting.push_back(self->make_response_promise());
    if (!group->flush_scheduled) {
      group->flush_scheduled = true;
      self->send(self, flush_atom::value);
    }
    return group->waiting.back();
  };
  auto restore_all = [=](column cf, const std::string& path) -> caf::result<string_map> {
    auto xs = store->scan(cf, state_prefix(path));
    if (!xs) {
      spdlog::error("state store: restore of {} failed: {}", path, describe(xs.error()));
      return xs.error();
    }
    return std::move(*xs);
  };
  auto restore_one = [=](column cf, const std::string& path,
                         const std::string& key) -> caf::result<bool, std::string> {
    auto x = store->get(cf, state_prefix(path) + key);
    if (!x) {
      spdlog::error("state store: read of {} {} failed: {}", path, key, describe(x.error()));
      return x.error();
    }
    if (!*x)
      return {false, std::string{}};
    return {true, std::move(**x)};
  };
  auto list = [=](column cf, const std::string& parent) -> caf::result<std::vector<std::string>> {
    auto xs = store->paths_under(cf, parent, max_listed_paths);
    if (!xs) {
      spdlog::error("state store: listing paths under {} failed: {}", parent,
                    describe(xs.error()));
      return xs.error();
    }
    return std::move(*xs);
  };
  auto family = [store](const column_ref& ref) -> caf::expected<column> {
    if (auto c = store->family(ref.family))
      return *c;
    return make_error(runtime_errc::not_found, "no column family \"" + ref.family + "\"");
  };
  return {
    [=](persist_atom, const std::string& path, const string_map& puts,
        const std::vector<std::string>& dels) {
      return persist(column::actor_state, path, puts, dels);
    },
    [=](persist_atom, const column_ref& ref, const std::string& path, const string_map& puts,
        const std::vector<std::string>& dels) -> caf::result<caf::ok_atom> {
      auto cf = family(ref);
      if (!cf)
        return cf.error();
      return persist(*cf, path, puts, dels);
    },
    [=](flush_atom) { flush(); },
    [=](restore_atom, const std::string& path) { return restore_all(column::actor_state, path); },
    [=](restore_atom, const column_ref& ref, const std::string& path) -> caf::result<string_map> {
      auto cf = family(ref);
      if (!cf)
        return cf.error();
      return restore_all(*cf, path);
    },
    [=](restore_atom, const std::string& path, const std::string& key) {
      return restore_one(column::actor_state, path, key);
    },
    [=](restore_atom, const column_ref& ref, const std::string& path,
        const std::string& key) -> caf::result<bool, std::string> {
      auto cf = family(ref);
      if (!cf)
        return cf.error();
      return restore_one(*cf, path, key);
    },
    [=](list_atom, const std::string& parent) { return list(column::actor_state, parent); },
    [=](list_atom, const column_ref& ref,
        const std::string& parent) -> caf::result<std::vector<std::string>> {
      auto cf = family(ref);
      if (!cf)
        return cf.error();
      return list(*cf, parent);
    },
    [=](probe_atom) -> uint64_t { return self->mailbox().size(); },
  };
}

} // namespace wharf::runtime
