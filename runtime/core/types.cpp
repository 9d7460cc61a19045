#include "runtime/core/types.hpp"

#include <map>
#include <vector>

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/message.hpp>
#include <caf/make_message.hpp>

#include "protocols/codec.hpp"
#include "runtime/pg/pg_connection.hpp"

namespace wharf::runtime {

const char* to_string(runtime_errc x) noexcept {
  switch (x) {
    case runtime_errc::none: return "none";
    case runtime_errc::peer_down: return "peer_down";
    case runtime_errc::unknown_node: return "unknown_node";
    case runtime_errc::not_found: return "not_found";
    case runtime_errc::bad_request: return "bad_request";
    case runtime_errc::timeout: return "timeout";
    case runtime_errc::storage_failure: return "storage_failure";
    case runtime_errc::restart_intensity: return "restart_intensity";
    case runtime_errc::killed: return "killed";
    case runtime_errc::shutting_down: return "shutting_down";
    case runtime_errc::bad_config: return "bad_config";
    case runtime_errc::unreachable: return "unreachable";
  }
  return "unknown";
}

caf::error make_error(runtime_errc code, std::string context) {
  return caf::error{static_cast<uint8_t>(code), runtime_errc_category,
                    caf::make_message(std::move(context))};
}

void register_as(caf::actor_system& sys, caf::atom_value name, const caf::actor& h) {
  // Only the actor that owns `name` writes it, so erase-then-put cannot lose a newer entry.
  sys.registry().erase(name);
  sys.registry().put(name, h);
}

namespace {

std::string context_text(const caf::message& ctx) {
  if (ctx.size() == 1 && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  return ctx.empty() ? std::string{} : to_string(ctx);
}

} // namespace

std::string describe(const caf::error& err) {
  if (!err)
    return "ok";
  std::string code;
  if (err.category() == runtime_errc_category)
    code = to_string(static_cast<runtime_errc>(err.code()));
  else if (err.category() == protocols::codec_errc_category)
    code = protocols::to_string(static_cast<protocols::codec_errc>(err.code()));
  else if (err.category() == pg_errc_category)
    code = to_string(static_cast<pg_errc>(err.code()));
  else if (err.category() == caf::atom("system"))
    code = to_string(static_cast<caf::sec>(err.code()));
  else if (err.category() == caf::atom("exit"))
    code = to_string(static_cast<caf::exit_reason>(err.code()));
  else
    code = to_string(err.category()) + "#" + std::to_string(err.code());
  auto ctx = context_text(err.context());
  return ctx.empty() ? code : code + ": " + ctx;
}

runtime_errc code_of(const caf::error& err) noexcept {
  if (err && err.category() == runtime_errc_category)
    return static_cast<runtime_errc>(err.code());
  return runtime_errc::none;
}

void add_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<protocols::member>("wharf.member");
  cfg.add_message_type<protocols::admin_request>("wharf.admin_request");
  cfg.add_message_type<protocols::admin_reply>("wharf.admin_reply");
  cfg.add_message_type<protocols::actor_entry>("wharf.actor_entry");
  cfg.add_message_type<std::vector<protocols::actor_entry>>("wharf.actor_entries");
  cfg.add_message_type<protocols::bench_echo>("wharf.bench_echo");
  cfg.add_message_type<std::map<std::string, std::string>>("wharf.string_map");
  cfg.add_message_type<std::vector<std::string>>("wharf.strings");
  auto render = [](uint8_t code, caf::atom_value, const caf::message& ctx) {
    auto c = context_text(ctx);
    std::string s = to_string(static_cast<runtime_errc>(code));
    return c.empty() ? s : s + ": " + c;
  };
  cfg.add_error_category(runtime_errc_category, render);
  cfg.add_error_category(protocols::codec_errc_category,
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           return std::string(protocols::to_string(
                                    static_cast<protocols::codec_errc>(code)))
                                  + ": " + context_text(ctx);
                         });
}

} // namespace wharf::runtime
