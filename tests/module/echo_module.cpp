#include "tests/module/echo_module.hpp"

#include <map>

#include <caf/all.hpp>

#include <kj/debug.h>

#include "runtime/config/config_section.hpp"
#include "runtime/console/console.hpp"
#include "runtime/core/metrics.hpp"
#include "runtime/core/types.hpp"
#include "runtime/rpc/front_end.hpp"
#include "runtime/rpc/rpc_client.hpp"
#include "runtime/storage/column_family.hpp"
#include "tests/module/echo.capnp.h"

namespace wharf::test {

using namespace wharf::runtime;

namespace {

using last_atom = caf::atom_constant<caf::atom("last")>;
using string_map = std::map<std::string, std::string>;

constexpr caf::atom_value echo_name = caf::atom("echo");
constexpr const char* family = "echo";
constexpr auto timeout = std::chrono::seconds{10};

caf::behavior echo_impl(caf::event_based_actor* self, child_context ctx, std::string greeting) {
  auto last = std::make_shared<std::string>();
  auto store = std::make_shared<caf::actor>();
  auto path = ctx.path;
  auto* calls = &ctx.metrics->get("echo_calls_total", metric_kind::counter,
                                  "texts the echo module answered");
  // The last text comes back from the module's own column family before anything else runs.
  self->request(ctx.root, timeout, whereis_atom::value, std::string{"system/store"})
    .await(
      [=](caf::actor& h) {
        *store = h;
        self->request(h, timeout, restore_atom::value, column_ref{family}, path,
                      std::string{"last"})
          .await([=](bool found, std::string& text) { *last = found ? text : ""; },
                 [=](caf::error& err) { self->quit(err); });
      },
      [=](caf::error& err) { self->quit(err); });
  register_as(self->system(), echo_name, caf::actor_cast<caf::actor>(self));
  return {
    [=](call_atom, const std::string& text) -> caf::result<std::string> {
      calls->add();
      auto rp = self->make_response_promise<std::string>();
      self->request(*store, timeout, persist_atom::value, column_ref{family}, path,
                    string_map{{"last", text}}, std::vector<std::string>{})
        .then(
          [=](caf::ok_atom) mutable {
            *last = text;
            rp.deliver(greeting + " " + text);
          },
          [=](caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
    [=](last_atom) { return *last; },
    [self](probe_atom) -> uint64_t { return self->mailbox().size(); },
  };
}

// Asks the echo actor to answer `text`.
kj::Promise<caf::expected<std::string>> say(kj_bridge& bridge, std::string text) {
  return bridge.request<std::string>(bridge.find(echo_name), timeout, call_atom::value,
                                     std::move(text));
}

class echo_server final : public echo::Echo::Server {
public:
  explicit echo_server(kj_bridge& b) : bridge_(b) {}

  kj::Promise<void> say(SayContext ctx) override {
    return test::say(bridge_, ctx.getParams().getText().cStr())
      .then([ctx](caf::expected<std::string> r) mutable {
        if (!r)
          kj::throwFatalException(KJ_EXCEPTION(FAILED, describe(r.error())));
        ctx.getResults().setReply(*r);
      });
  }

  kj::Promise<void> last(LastContext ctx) override {
    return bridge_.request<std::string>(bridge_.find(echo_name), timeout, last_atom::value)
      .then([ctx](caf::expected<std::string> r) mutable {
        if (!r)
          kj::throwFatalException(KJ_EXCEPTION(FAILED, describe(r.error())));
        ctx.getResults().setText(*r);
      });
  }

private:
  kj_bridge& bridge_;
};

// One connection of the `echo` listener: a reply per line; "bye" when the node drains.
class line_session {
public:
  line_session(kj_bridge& b, kj::AsyncIoStream& s) : bridge_(b), stream_(s) {}

  kj::Promise<void> run(connection_context& ctx) {
    return loop().exclusiveJoin(ctx.draining.addBranch().then([this] {
      return stream_.write("bye\n", 4);
    }));
  }

private:
  kj::Promise<void> loop() {
    return stream_.tryRead(buf_, 1, sizeof(buf_)).then([this](size_t n) -> kj::Promise<void> {
      if (n == 0)
        return kj::READY_NOW;
      pending_.append(buf_, n);
      if (pending_.size() > 64 * 1024)
        return stream_.write("line too long\n", 14);
      return answer_lines();
    });
  }

  kj::Promise<void> answer_lines() {
    auto nl = pending_.find('\n');
    if (nl == std::string::npos)
      return loop();
    auto line = pending_.substr(0, nl);
    pending_.erase(0, nl + 1);
    return say(bridge_, line).then([this](caf::expected<std::string> r) {
      reply_ = (r ? *r : "error: " + describe(r.error())) + "\n";
      return stream_.write(reply_.data(), reply_.size());
    }).then([this] { return answer_lines(); });
  }

  kj_bridge& bridge_;
  kj::AsyncIoStream& stream_;
  char buf_[4096];
  std::string pending_;
  std::string reply_;
};

std::string json_reply(const std::string& text) {
  return "{\"reply\":\"" + json_escape(text) + "\"}";
}

class echo_front final : public module_front {
public:
  echo_front(front_context& ctx, uint16_t port) : ctx_(ctx), port_(port) {}

  kj::Maybe<capnp::Capability::Client> capability() override {
    return capnp::Capability::Client(kj::heap<echo_server>(ctx_.bridge));
  }

  void add_routes(route_table& routes) override {
    auto answer = [this](std::string text) {
      return say(ctx_.bridge, std::move(text)).then([](caf::expected<std::string> r) {
        if (!r)
          return http_response::error(503, "UNAVAILABLE", describe(r.error()));
        return http_response::json(200, json_reply(*r));
      });
    };
    routes.add("GET", "/v1/echo", [answer](http_request& req) {
      if (!req.has_query("text"))
        return kj::Promise<http_response>(
          http_response::error(400, "INVALID_ARGUMENT", "text is required (?text=...)"));
      return answer(req.query_value("text"));
    });
    routes.add("POST", "/v1/echo", [answer](http_request& req) { return answer(req.body); });
  }

  std::vector<listener_spec> listeners() override {
    listener_spec spec;
    spec.name = "echo";
    spec.port = port_;
    auto& bridge = ctx_.bridge;
    spec.handler = [&bridge](kj::AsyncIoStream& stream, connection_context& c) {
      auto session = kj::heap<line_session>(bridge, stream);
      auto p = session->run(c);
      return p.attach(kj::mv(session));
    };
    return {std::move(spec)};
  }

private:
  front_context& ctx_;
  uint16_t port_;
};

} // namespace

void echo_module::configure(config_root& root) {
  root.section("echo", summary(), [this](config_section& s) {
    s.text("greeting", cfg_.greeting, "what every answer starts with");
    s.port("port", cfg_.port, "the line-echo TCP listener, 0 = a free port");
  });
}

caf::error echo_module::validate(const node_config&) const {
  if (cfg_.greeting.empty() || cfg_.greeting.size() > 100)
    return make_error(runtime_errc::bad_config, "echo.greeting: must be 1..100 characters");
  return caf::none;
}

void echo_module::add_types(caf::actor_system_config&) {
  // strings only: already registered by the node
}

std::vector<column_family_spec> echo_module::column_families() const {
  return {{family, false}};
}

std::vector<module_child> echo_module::children(const module_context&) {
  return {{worker_child("echo", restart_type::permanent, echo_impl, cfg_.greeting), {"echo"}}};
}

std::unique_ptr<module_front> echo_module::make_front(front_context& ctx) {
  return std::make_unique<echo_front>(ctx, cfg_.port);
}

std::vector<console_command> echo_module::console_commands() const {
  return {{"say", "say TEXT", "the echo module answers TEXT (test module)", 1, 1,
           [](rpc_client& client, const std::vector<std::string>& args) {
             auto text = args[0];
             auto r = client.call<std::string>([text](api::Node::Client node) {
               auto req = node.serviceRequest();
               req.setName("echo");
               auto echo = req.send().getService().castAs<echo::Echo>();
               auto say = echo.sayRequest();
               say.setText(text);
               return say.send().then(
                 [](auto resp) { return std::string(resp.getReply().cStr()); });
             });
             if (!r)
               return console_result::failure("", describe(r.error()));
             console_result res;
             res.output = *r + "\n";
             return res;
           }}};
}

} // namespace wharf::test
