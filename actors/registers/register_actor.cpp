#include "actors/registers/register_actor.hpp"

#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "runtime/core/types.hpp"

namespace wharf::actors {

using namespace wharf::runtime;
using string_map = std::map<std::string, std::string>;

namespace {

constexpr const char* store_path = "system/store";

} // namespace

caf::behavior register_impl(caf::event_based_actor* self, child_context ctx) {
  auto data = std::make_shared<string_map>();
  auto store = std::make_shared<caf::actor>();
  auto path = ctx.path;
  auto restore = [=] {
    self->request(*store, std::chrono::seconds{10}, restore_atom::value, path)
      .await(
        [=](string_map& restored) {
          *data = std::move(restored);
          spdlog::info("{}: restored {} keys", path, data->size());
        },
        [=](caf::error& err) {
          spdlog::error("{}: cannot restore state: {}", path, describe(err));
          self->quit(err);
        });
  };
  // Resolve the store through the tree rather than the registry: the request queues behind
  // the `system` supervisor's start-up, so the store exists by the time it is answered.
  // `await` holds every other message in the mailbox until the state is back, so no request
  // ever sees a half-restored register.
  self->request(ctx.root, std::chrono::seconds{10}, whereis_atom::value,
                std::string{store_path})
    .await(
      [=](caf::actor& h) {
        *store = std::move(h);
        // Let it crash: without its store the register cannot keep a promise of durability;
        // its supervisor restarts it and the new incarnation finds the new store.
        self->monitor(*store);
        restore();
      },
      [=](caf::error& err) {
        spdlog::error("{}: cannot find {}: {}", path, store_path, describe(err));
        self->quit(err);
      });
  self->set_down_handler([=](caf::down_msg& dm) {
    if (*store && dm.source == store->address())
      self->quit(make_error(runtime_errc::not_found, path + ": state store went down"));
  });
  register_as(self->system(), register_name, caf::actor_cast<caf::actor>(self));
  return {
    [=](caf::get_atom, const std::string& key) {
      auto i = data->find(key);
      return i == data->end() ? caf::make_message(false, std::string{})
                              : caf::make_message(true, i->second);
    },
    [=](caf::put_atom, const std::string& key, const std::string& value) {
      auto rp = self->make_response_promise();
      self->request(*store, std::chrono::seconds{10}, persist_atom::value, path,
                    string_map{{key, value}}, std::vector<std::string>{})
        .then(
          [=](caf::ok_atom) mutable {
            (*data)[key] = value;
            rp.deliver(caf::ok_atom::value);
          },
          [=](caf::error& err) mutable {
            spdlog::error("{}: persist of {} failed: {}", path, key, describe(err));
            rp.deliver(err);
          });
      return rp;
    },
    [self](probe_atom) -> uint64_t { return self->mailbox().size(); },
  };
}

runtime::child_spec register_child() {
  return worker_child("register", restart_type::permanent, register_impl);
}

} // namespace wharf::actors
