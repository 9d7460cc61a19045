#include "actors/registers/register_client.hpp"

#include "runtime/rpc/rpc_client.hpp"

namespace wharf::actors {

namespace {

register_reply read(kv::RegisterReply::Reader r) {
  register_reply x;
  x.error = r.getError().cStr();
  x.error_code = r.getErrorCode().cStr();
  x.found = r.getFound();
  x.value = r.getValue().cStr();
  x.node = r.getNode().cStr();
  return x;
}

} // namespace

caf::expected<register_reply> register_get(runtime::rpc_client& client, const std::string& node,
                                           const std::string& key) {
  return client.call<register_reply>([&](api::Node::Client n) {
    auto req = n.kvRequest().send().getKv().getRequest();
    req.setNode(node);
    req.setKey(key);
    return req.send().then([](auto resp) { return read(resp.getReply()); });
  });
}

caf::expected<register_reply> register_put(runtime::rpc_client& client, const std::string& node,
                                           const std::string& key, const std::string& value) {
  return client.call<register_reply>([&](api::Node::Client n) {
    auto req = n.kvRequest().send().getKv().putRequest();
    req.setNode(node);
    req.setKey(key);
    req.setValue(value);
    return req.send().then([](auto resp) { return read(resp.getReply()); });
  });
}

} // namespace wharf::actors
