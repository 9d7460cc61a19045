#include "actors/registers/register_module.hpp"

#include <caf/all.hpp>

#include "actors/registers/register_actor.hpp"
#include "actors/registers/register_client.hpp"
#include "protocols/api.capnp.h"
#include "protocols/capnp_io.hpp"
#include "protocols/kv.capnp.h"
#include "runtime/config/node_config.hpp"
#include "runtime/console/console.hpp"
#include "runtime/core/types.hpp"
#include "runtime/rpc/front_end.hpp"

namespace wharf::actors {

using namespace wharf::runtime;
using protocols::error_code;

namespace {

// The register's `Register` capability: every call goes through the cluster actor, which
// runs it here or forwards it to the node it names.
class register_server final : public api::Register::Server {
public:
  explicit register_server(front_context& ctx) : ctx_(ctx) {}

  kj::Promise<void> get(GetContext c) override {
    auto p = c.getParams();
    return call(p.getNode().cStr(), encode_register_call(p.getKey().cStr(), false, {}),
                [c](kv::RegisterReply::Reader r) mutable { c.getResults().setReply(r); },
                [c](const std::string& node, error_code code, const std::string& why) mutable {
                  fill(c.getResults().initReply(), node, code, why);
                });
  }

  kj::Promise<void> put(PutContext c) override {
    auto p = c.getParams();
    return call(p.getNode().cStr(),
                encode_register_call(p.getKey().cStr(), true, p.getValue().cStr()),
                [c](kv::RegisterReply::Reader r) mutable { c.getResults().setReply(r); },
                [c](const std::string& node, error_code code, const std::string& why) mutable {
                  fill(c.getResults().initReply(), node, code, why);
                });
  }

private:
  static void fill(kv::RegisterReply::Builder b, const std::string& node, error_code code,
                   const std::string& why) {
    b.setNode(node);
    b.setErrorCode(protocols::to_string(code));
    b.setError(why);
  }

  template <class Ok, class Fail>
  kj::Promise<void> call(std::string node, std::string payload, Ok ok, Fail fail) {
    auto cluster = ctx_.bridge.find(cluster_name);
    auto target = node.empty() ? ctx_.node.name : node;
    if (!cluster) {
      fail(target, error_code::unavailable, "the node is starting or stopping");
      return kj::READY_NOW;
    }
    return ctx_.bridge
      .request<std::string>(cluster, std::chrono::milliseconds{ctx_.node.request_timeout},
                            call_atom::value, node, std::string(register_service),
                            std::move(payload))
      .then([ok, fail, target](caf::expected<std::string> bytes) mutable {
        if (!bytes) {
          fail(target, wire_code(bytes.error()), message_of(bytes.error()));
          return;
        }
        try {
          protocols::flat_reader rd{*bytes};
          if (!rd.ok())
            throw std::runtime_error("not a Cap'n Proto message");
          ok(rd.get<kv::RegisterReply>());
        } catch (const std::exception& e) {
          fail(target, error_code::internal, std::string("malformed register reply: ") + e.what());
        }
      });
  }

  front_context& ctx_;
};

class register_front final : public module_front {
public:
  explicit register_front(front_context& ctx) : ctx_(ctx) {}
  kj::Maybe<capnp::Capability::Client> capability() override {
    return capnp::Capability::Client(kj::heap<register_server>(ctx_));
  }

private:
  front_context& ctx_;
};

console_result show(const caf::expected<register_reply>& r,
                    const std::function<console_result(const register_reply&)>& ok) {
  if (!r)
    return console_result::failure("", describe(r.error()));
  if (!r->error.empty())
    return console_result::failure(r->error_code, r->error);
  return ok(*r);
}

} // namespace

const char* register_module::name() const {
  return register_service;
}

const char* register_module::summary() const {
  return "a durable key/value register on every node (console: get, put)";
}

std::vector<module_child> register_module::children(const module_context& ctx) {
  return {{worker_child("register", restart_type::permanent, register_impl, ctx.node.name), {}}};
}

std::unique_ptr<module_front> register_module::make_front(front_context& ctx) {
  return std::make_unique<register_front>(ctx);
}

std::vector<console_command> register_module::console_commands() const {
  std::vector<console_command> out;
  out.push_back({"get", "get NODE KEY", "read KEY from the node's durable register", 2, 2,
                 [](rpc_client& c, const std::vector<std::string>& a) {
                   auto key = a[1];
                   return show(register_get(c, a[0], key), [key](const register_reply& r) {
                     if (!r.found)
                       return console_result::failure(
                         protocols::to_string(error_code::not_found),
                         "no key \"" + key + "\" on " + r.node);
                     console_result res;
                     res.output = r.value + "\n";
                     return res;
                   });
                 }});
  out.push_back({"put", "put NODE KEY VALUE", "write KEY = VALUE to the node's durable register",
                 3, 3, [](rpc_client& c, const std::vector<std::string>& a) {
                   return show(register_put(c, a[0], a[1], a[2]), [](const register_reply&) {
                     console_result res;
                     res.output = "ok\n";
                     return res;
                   });
                 }});
  return out;
}

} // namespace wharf::actors
