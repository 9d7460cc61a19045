#include "runtime/rpc/admin_server.hpp"

#include <capnp/dynamic.h>
#include <capnp/schema.h>

#include "protocols/api.capnp.h"
#include "protocols/capnp_convert.hpp"
#include "protocols/error_code.hpp"
#include "runtime/core/types.hpp"
#include "runtime/rpc/bridge.hpp"

namespace wharf::runtime {

namespace {

using protocols::admin_command;
using protocols::admin_reply;
using protocols::admin_request;
using protocols::error_code;

constexpr auto admin_timeout = std::chrono::seconds{30};

std::string str(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

class admin_impl final : public api::Admin::Server {
public:
  explicit admin_impl(kj_bridge& b) : bridge_(b) {}

  template <class Context>
  kj::Promise<void> run(Context ctx, admin_request req) {
    auto cluster = bridge_.find(cluster_name);
    if (!cluster) {
      protocols::write_admin_reply(ctx.getResults().initReply(),
                                   protocols::make_admin_error(to_string(error_code::unavailable),
                                                               "the node is starting or stopping"));
      return kj::READY_NOW;
    }
    return bridge_.request<admin_reply>(cluster, admin_timeout, admin_atom::value, std::move(req))
      .then([ctx](caf::expected<admin_reply> r) mutable {
        if (r) {
          protocols::write_admin_reply(ctx.getResults().initReply(), *r);
          return;
        }
        auto code = wire_code(r.error());
        protocols::write_admin_reply(
          ctx.getResults().initReply(),
          protocols::make_admin_error(to_string(code), code == error_code::timeout
                                                         ? "the node did not answer within 30 s"
                                                         : describe(r.error())));
      });
  }

  static admin_request make(admin_command cmd, capnp::Text::Reader node) {
    admin_request r;
    r.command = cmd;
    r.node = str(node);
    return r;
  }

  kj::Promise<void> members(MembersContext ctx) override {
    return run(ctx, make(admin_command::members, ctx.getParams().getNode()));
  }
  kj::Promise<void> tree(TreeContext ctx) override {
    return run(ctx, make(admin_command::tree, ctx.getParams().getNode()));
  }
  kj::Promise<void> actors(ActorsContext ctx) override {
    return run(ctx, make(admin_command::actors, ctx.getParams().getNode()));
  }
  kj::Promise<void> stats(StatsContext ctx) override {
    return run(ctx, make(admin_command::stats, ctx.getParams().getNode()));
  }
  kj::Promise<void> kill(KillContext ctx) override {
    auto r = make(admin_command::kill, ctx.getParams().getNode());
    r.path = str(ctx.getParams().getPath());
    return run(ctx, std::move(r));
  }
  // Retired: a module serves get and put now (Node.kv()).
  kj::Promise<void> get(GetContext ctx) override { return moved(ctx); }
  kj::Promise<void> put(PutContext ctx) override { return moved(ctx); }

private:
  template <class Context>
  static kj::Promise<void> moved(Context ctx) {
    protocols::write_admin_reply(
      ctx.getResults().initReply(),
      protocols::make_admin_error(to_string(error_code::unimplemented),
                                  "Admin.get/put are retired: use Node.kv() (console: get, put)"));
    return kj::READY_NOW;
  }

  kj_bridge& bridge_;
};

class node_server final : public capnp::DynamicCapability::Server {
public:
  node_server(capnp::Capability::Client admin, std::map<std::string, capnp::Capability::Client> caps)
    : Server(capnp::Schema::from<api::Node>()), admin_(kj::mv(admin)), caps_(std::move(caps)) {}

  kj::Promise<void> call(capnp::InterfaceSchema::Method method,
                         capnp::CallContext<capnp::DynamicStruct, capnp::DynamicStruct> ctx) override {
    std::string name = method.getProto().getName().cStr();
    auto results = ctx.getResults();
    if (name == "service") {
      auto wanted = str(ctx.getParams().get("name").as<capnp::Text>());
      results.get("service").as<capnp::AnyPointer>().setAs<capnp::Capability>(find(wanted));
      return kj::READY_NOW;
    }
    // Every other method is a typed accessor: no parameters, one capability result.
    auto field = results.getSchema().getFields()[0];
    auto cap = name == "admin" ? admin_ : find(name);
    results.set(field, cap.castAs<capnp::DynamicCapability>(field.getType().asInterface()));
    return kj::READY_NOW;
  }

private:
  capnp::Capability::Client find(const std::string& name) {
    auto i = caps_.find(name);
    if (i == caps_.end())
      kj::throwFatalException(KJ_EXCEPTION(UNIMPLEMENTED, "this node runs no module", name));
    return i->second;
  }

  capnp::Capability::Client admin_;
  std::map<std::string, capnp::Capability::Client> caps_;
};

} // namespace

capnp::Capability::Client make_admin_server(kj_bridge& bridge) {
  return kj::heap<admin_impl>(bridge);
}

capnp::Capability::Client make_node_server(capnp::Capability::Client admin,
                                           std::map<std::string, capnp::Capability::Client> caps) {
  return capnp::DynamicCapability::Client(kj::heap<node_server>(kj::mv(admin), std::move(caps)));
}

bool node_has_accessor(const std::string& name) {
  for (auto m : capnp::Schema::from<api::Node>().getMethods())
    if (name == m.getProto().getName().cStr() && name != "service" && name != "admin")
      return true;
  return false;
}

} // namespace wharf::runtime
