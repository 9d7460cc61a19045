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

void add_ops(write_batch& wb, const std::string& path, const string_map& puts,
             const std::vector<std::string>& dels) {
  auto prefix = state_prefix(path);
  for (auto& [k, v] : puts)
    wb.put(column::actor_state, prefix + k, v);
  for (auto& k : dels)
    wb.del(column::actor_state, prefix + k);
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
  return {
    [=](persist_atom, const std::string& path, const string_map& puts,
        const std::vector<std::string>& dels) -> caf::result<caf::ok_atom> {
      if (mode == durability_mode::sync) {
        write_batch wb;
        add_ops(wb, path, puts, dels);
        if (auto err = store->write(wb, true)) {
          spdlog::error("state store: persist of {} failed: {}", path, describe(err));
          return err;
        }
        count(1);
        return caf::ok_atom::value;
      }
      // Group commit: queue, and flush once the mailbox has delivered what is already there
      // (the flush message lines up behind every persist received so far).
      add_ops(group->batch, path, puts, dels);
      group->waiting.push_back(self->make_response_promise());
      if (!group->flush_scheduled) {
        group->flush_scheduled = true;
        self->send(self, flush_atom::value);
      }
      return group->waiting.back();
    },
    [=](flush_atom) { flush(); },
    [=](restore_atom, const std::string& path) -> caf::result<string_map> {
      auto xs = store->scan(column::actor_state, state_prefix(path));
      if (!xs) {
        spdlog::error("state store: restore of {} failed: {}", path, describe(xs.error()));
        return xs.error();
      }
      return std::move(*xs);
    },
    [=](restore_atom, const std::string& path,
        const std::string& key) -> caf::result<bool, std::string> {
      auto x = store->get(column::actor_state, state_prefix(path) + key);
      if (!x) {
        spdlog::error("state store: read of {} {} failed: {}", path, key, describe(x.error()));
        return x.error();
      }
      if (!*x)
        return {false, std::string{}};
      return {true, std::move(**x)};
    },
    [=](list_atom, const std::string& parent) -> caf::result<std::vector<std::string>> {
      auto xs = store->paths_under(column::actor_state, parent, max_listed_paths);
      if (!xs) {
        spdlog::error("state store: listing paths under {} failed: {}", parent,
                      describe(xs.error()));
        return xs.error();
      }
      return std::move(*xs);
    },
    [=](probe_atom) -> uint64_t { return self->mailbox().size(); },
  };
}

} // namespace wharf::runtime
