#include "actors/registers/register_actor.hpp"

#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "protocols/capnp_io.hpp"
#include "protocols/kv.capnp.h"
#include "runtime/core/types.hpp"

namespace wharf::actors {

using namespace wharf::runtime;
using protocols::error_code;
using string_map = std::map<std::string, std::string>;

namespace {

constexpr const char* store_path = "system/store";
constexpr auto store_timeout = std::chrono::seconds{10}; // the local state store
constexpr size_t max_call_bytes = 1u << 20; // a key and a value

std::string reply_bytes(const std::string& node, error_code code, const std::string& error,
                        bool found = false, const std::string& value = {}) {
  capnp::MallocMessageBuilder mb;
  auto r = mb.initRoot<kv::RegisterReply>();
  r.setNode(node);
  r.setErrorCode(protocols::to_string(code));
  r.setError(error);
  r.setFound(found);
  r.setValue(value);
  return protocols::message_bytes(mb);
}

} // namespace

std::string encode_register_call(const std::string& key, bool put, const std::string& value) {
  capnp::MallocMessageBuilder mb;
  auto c = mb.initRoot<kv::RegisterCall>();
  c.setKey(key);
  if (put)
    c.setPut(value);
  else
    c.setGet();
  return protocols::message_bytes(mb);
}

caf::behavior register_impl(caf::event_based_actor* self, child_context ctx,
                            std::string node_name) {
  auto data = std::make_shared<string_map>();
  auto store = std::make_shared<caf::actor>();
  auto path = ctx.path;
  auto node = std::make_shared<std::string>(std::move(node_name));
  auto restore = [=] {
    self->request(*store, store_timeout, restore_atom::value, path)
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
  self->request(ctx.root, store_timeout, whereis_atom::value, std::string{store_path})
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
  register_as(self->system(), caf::atom(register_service), caf::actor_cast<caf::actor>(self));
  return {
    [=](call_atom, const std::string& payload) -> caf::result<std::string> {
      std::string key, value;
      bool put = false;
      try {
        protocols::flat_reader rd{payload, max_call_bytes};
        if (!rd.ok())
          return reply_bytes(*node, error_code::invalid_argument, "malformed register call");
        auto c = rd.get<kv::RegisterCall>();
        key = c.getKey().cStr();
        put = c.isPut();
        if (put)
          value = c.getPut().cStr();
      } catch (const kj::Exception& e) {
        return reply_bytes(*node, error_code::invalid_argument,
                           std::string("malformed register call: ") + e.getDescription().cStr());
      }
      if (key.empty())
        return reply_bytes(*node, error_code::invalid_argument, "a key is required");
      if (!put) {
        auto i = data->find(key);
        if (i == data->end())
          return reply_bytes(*node, error_code::none, "", false);
        return reply_bytes(*node, error_code::none, "", true, i->second);
      }
      auto rp = self->make_response_promise<std::string>();
      self->request(*store, store_timeout, persist_atom::value, path, string_map{{key, value}},
                    std::vector<std::string>{})
        .then(
          [=](caf::ok_atom) mutable {
            (*data)[key] = value;
            rp.deliver(reply_bytes(*node, error_code::none, ""));
          },
          [=](caf::error& err) mutable {
            spdlog::error("{}: persist of {} failed: {}", path, key, describe(err));
            rp.deliver(reply_bytes(*node, wire_code(err), describe(err)));
          });
      return rp;
    },
    [self](probe_atom) -> uint64_t { return self->mailbox().size(); },
  };
}

} // namespace wharf::actors
