#include "runtime/rpc/admin_client.hpp"

#include "protocols/capnp_convert.hpp"
#include "runtime/rpc/rpc_client.hpp"

namespace wharf::runtime {

using protocols::admin_command;
using protocols::admin_reply;

namespace {

kj::StringPtr text(const std::string& s) {
  return kj::StringPtr(s.c_str(), s.size());
}

template <class Request>
kj::Promise<admin_reply> send(Request req) {
  return req.send().then([](auto resp) { return protocols::read_admin_reply(resp.getReply()); });
}

kj::Promise<admin_reply> issue(api::Node::Client node, const protocols::admin_request& req) {
  auto admin = node.adminRequest().send().getAdmin();
  // Every Admin method takes the target node; some take one or two more fields.
  auto to = [&](auto r) {
    r.setNode(text(req.node));
    return r;
  };
  switch (req.command) {
    case admin_command::members: return send(to(admin.membersRequest()));
    case admin_command::tree: return send(to(admin.treeRequest()));
    case admin_command::actors: return send(to(admin.actorsRequest()));
    case admin_command::stats: return send(to(admin.statsRequest()));
    case admin_command::kill: {
      auto r = to(admin.killRequest());
      r.setPath(text(req.path));
      return send(kj::mv(r));
    }
    case admin_command::get:
    case admin_command::put: break; // retired: a module serves them (Node.kv())
  }
  return protocols::make_admin_error("UNIMPLEMENTED",
                                     "Admin.get/put are retired: use Node.kv() (console: get, put)");
}

} // namespace

struct admin_client::impl {
  rpc_client rpc;
  impl(std::string host, uint16_t port, std::chrono::milliseconds timeout)
    : rpc(std::move(host), port, timeout) {}
};

admin_client::admin_client(std::string host, uint16_t port, std::chrono::milliseconds timeout)
  : impl_(std::make_unique<impl>(std::move(host), port, timeout)) {}

admin_client::~admin_client() = default;

const std::string& admin_client::target() const noexcept {
  return impl_->rpc.target();
}

caf::expected<admin_reply> call_admin(rpc_client& client, const protocols::admin_request& req) {
  return client.call<admin_reply>(
    [&req](api::Node::Client node) { return issue(kj::mv(node), req); });
}

caf::expected<admin_reply> admin_client::call(const protocols::admin_request& req) {
  return call_admin(impl_->rpc, req);
}

} // namespace wharf::runtime
