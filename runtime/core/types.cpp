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
#include "runtime/storage/column_family.hpp"

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

caf::error make_error(protocols::error_code code, std::string context) {
  return caf::error{static_cast<uint8_t>(code), error_code_category,
                    caf::make_message(std::move(context))};
}

caf::error make_error(protocols::error_code code, std::string context, std::string sqlstate) {
  if (sqlstate.empty())
    return make_error(code, std::move(context));
  return caf::error{static_cast<uint8_t>(code), error_code_category,
                    caf::make_message(std::move(context), std::move(sqlstate))};
}

std::string sqlstate_of(const caf::error& err) {
  auto& ctx = err.context();
  if (!err || ctx.size() != 2 || !ctx.match_element<std::string>(0)
      || !ctx.match_element<std::string>(1))
    return {};
  return ctx.get_as<std::string>(1);
}

protocols::error_code wire_code(const caf::error& err) noexcept {
  using protocols::error_code;
  if (!err)
    return error_code::none;
  if (err.category() == error_code_category)
    return static_cast<error_code>(err.code());
  if (err.category() == runtime_errc_category) {
    switch (static_cast<runtime_errc>(err.code())) {
      case runtime_errc::none: return error_code::none;
      case runtime_errc::peer_down: return error_code::peer_down;
      case runtime_errc::unknown_node: return error_code::unknown_node;
      case runtime_errc::not_found: return error_code::not_found;
      case runtime_errc::bad_request:
      case runtime_errc::bad_config: return error_code::invalid_argument;
      case runtime_errc::timeout: return error_code::timeout;
      case runtime_errc::storage_failure: return error_code::storage_failure;
      case runtime_errc::restart_intensity:
      case runtime_errc::killed: return error_code::not_running;
      case runtime_errc::shutting_down:
      case runtime_errc::unreachable: return error_code::unavailable;
    }
    return error_code::internal;
  }
  if (err.category() == protocols::codec_errc_category)
    return error_code::invalid_argument;
  if (err.category() == pg_errc_category) {
    switch (static_cast<pg_errc>(err.code())) {
      case pg_errc::connection: return error_code::unavailable;
      case pg_errc::cancelled: return error_code::cancelled;
      default: return error_code::pg_error;
    }
  }
  if (err.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(err.code())) {
      case caf::sec::request_timeout: return error_code::timeout;
      case caf::sec::request_receiver_down: return error_code::not_running;
      case caf::sec::invalid_argument: return error_code::unavailable; // no actor to ask
      default: return error_code::internal;
    }
  }
  return error_code::internal;
}

void register_as(caf::actor_system& sys, caf::atom_value name, const caf::actor& h) {
  // Only the actor that owns `name` writes it, so erase-then-put cannot lose a newer entry.
  sys.registry().erase(name);
  sys.registry().put(name, h);
}

namespace {

// The message of an error's context: its first string (a second one is the SQLSTATE).
std::string context_text(const caf::message& ctx) {
  if ((ctx.size() == 1 || ctx.size() == 2) && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  return ctx.empty() ? std::string{} : to_string(ctx);
}

} // namespace

std::string message_of(const caf::error& err) {
  auto ctx = context_text(err.context());
  return ctx.empty() ? describe(err) : ctx;
}

std::string describe(const caf::error& err) {
  if (!err)
    return "ok";
  std::string code;
  if (err.category() == error_code_category)
    code = protocols::to_string(static_cast<protocols::error_code>(err.code()));
  else if (err.category() == runtime_errc_category)
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
  cfg.add_message_type<column_ref>("wharf.column_ref");
  auto render = [](uint8_t code, caf::atom_value, const caf::message& ctx) {
    auto c = context_text(ctx);
    std::string s = to_string(static_cast<runtime_errc>(code));
    return c.empty() ? s : s + ": " + c;
  };
  cfg.add_error_category(runtime_errc_category, render);
  cfg.add_error_category(error_code_category,
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           auto c = context_text(ctx);
                           std::string s = protocols::to_string(
                             static_cast<protocols::error_code>(code));
                           return c.empty() ? s : s + ": " + c;
                         });
  cfg.add_error_category(pg_errc_category,
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           auto c = context_text(ctx);
                           std::string s = to_string(static_cast<pg_errc>(code));
                           return c.empty() ? s : s + ": " + c;
                         });
  cfg.add_error_category(protocols::codec_errc_category,
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           return std::string(protocols::to_string(
                                    static_cast<protocols::codec_errc>(code)))
                                  + ": " + context_text(ctx);
                         });
}

} // namespace wharf::runtime
