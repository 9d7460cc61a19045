#pragma once
/// The analytics module's front end on the node's KJ loop (internal to actors/analytics):
/// the `Analytics` capability (api.capnp) and the HTTP routes
/// `POST /v1/reports`, `GET /v1/reports`, `GET|DELETE /v1/reports/{id}` and
/// `GET /v1/reports/{id}/rows?offset=&limit=`. Calls become `(api_atom, ApiCall bytes, feed)`
/// requests to the node's analytics service (through the bridge; the report owns its
/// deadline); progress streams back through a bounded feed that keeps the newest updates.

#include <memory>

#include "runtime/rpc/front_end.hpp"

namespace wharf::actors {

std::unique_ptr<runtime::module_front> make_analytics_front(runtime::front_context& ctx);

} // namespace wharf::actors
