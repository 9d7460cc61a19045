#include "actors/analytics/front_end.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/analytics/atoms.hpp"
#include "actors/analytics/report_json.hpp"
#include "protocols/analytics.capnp.h"
#include "protocols/api.capnp.h"
#include "protocols/capnp_io.hpp"
#include "protocols/error_code.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/core/types.hpp"
#include "runtime/rpc/feed.hpp"

namespace wharf::actors {

using namespace wharf::runtime;
using protocols::error_code;
using protocols::message_bytes;
namespace rp = wharf::reports;
namespace ad = analytics_detail;

namespace {

// Progress updates a caller's sink may fall behind by; older ones are dropped (the newest
// says all the older ones did).
constexpr size_t progress_backlog = 16;
// What a 503 for a full admission queue tells the caller to wait.
constexpr const char* retry_after_s = "5";

// Reads a message our own service encoded (trusted, still bounded), or throws.
template <class T, class F>
auto with_message(const std::string& bytes, F f) {
  protocols::flat_reader rd{bytes};
  if (!rd.ok())
    kj::throwFatalException(KJ_EXCEPTION(FAILED, "malformed answer from the analytics service"));
  return f(rd.get<T>());
}

std::string unavailable_response(const std::string& node, const std::string& why) {
  capnp::MallocMessageBuilder mb;
  auto r = mb.initRoot<rp::ReportResponse>();
  r.setStatus(rp::ReportStatus::FAILED);
  r.setErrorCode(protocols::to_string(error_code::unavailable));
  r.setErrorMessage(why);
  r.setNode(node);
  return message_bytes(mb);
}

std::string unavailable_page(const std::string& why) {
  capnp::MallocMessageBuilder mb;
  auto r = mb.initRoot<rp::ResultPage>();
  r.setErrorCode(protocols::to_string(error_code::unavailable));
  r.setError(why);
  return message_bytes(mb);
}

// Talks to the node's analytics service and, for `list`, to any node's through the cluster.
class service_client {
public:
  explicit service_client(front_context& ctx) : ctx_(ctx) {}

  // The service's answer to an encoded ApiCall; `unavailable(why)` makes the answer when the
  // service does not answer (not running, restarting, the node stopping).
  template <class Unavailable>
  kj::Promise<std::string> call(std::string api_call, std::shared_ptr<feed> progress,
                                Unavailable unavailable) {
    auto svc = ctx_.bridge.find(caf::atom(ad::service_name));
    return ctx_.bridge
      .request<std::string>(svc, std::chrono::milliseconds{0}, api_atom::value,
                            std::move(api_call), std::move(progress))
      .then(
        [unavailable](caf::expected<std::string> r) {
          return r ? std::move(*r) : unavailable("the analytics service is not running here ("
                                                 + describe(r.error()) + ")");
        },
        // The service went away with the call (it restarted, the node stops).
        [unavailable](kj::Exception&&) {
          return unavailable("the analytics service stopped before it answered");
        });
  }

  kj::Promise<std::string> report_call(std::string api_call, std::shared_ptr<feed> progress) {
    auto node = ctx_.node.name;
    return call(std::move(api_call), std::move(progress),
                [node](const std::string& why) { return unavailable_response(node, why); });
  }

  kj::Promise<std::string> fetch_call(std::string api_call) {
    return call(std::move(api_call), nullptr,
                [](const std::string& why) { return unavailable_page(why); });
  }

  // The ReportList of `node` ("" = this one), built here when the node cannot answer.
  kj::Promise<std::string> list(std::string node) {
    capnp::MallocMessageBuilder mb;
    mb.initRoot<rp::WorkerCall>().setList();
    auto target = node.empty() ? ctx_.node.name : node;
    return ctx_.bridge
      .request<std::string>(ctx_.bridge.find(cluster_name), ctx_.node.request_timeout,
                            call_atom::value, node, std::string(ad::service_name),
                            message_bytes(mb))
      .then([target](caf::expected<std::string> r) {
        auto fail = [&](error_code code, const std::string& why) {
          capnp::MallocMessageBuilder out;
          auto l = out.initRoot<rp::ReportList>();
          l.setNode(target);
          l.setErrorCode(protocols::to_string(code));
          l.setError(why);
          return message_bytes(out);
        };
        if (!r)
          return fail(wire_code(r.error()), message_of(r.error()));
        try {
          protocols::flat_reader rd{*r};
          if (rd.ok()) {
            auto w = rd.get<rp::WorkerReply>();
            if (w.isList()) {
              capnp::MallocMessageBuilder out;
              out.setRoot(w.getList());
              return message_bytes(out);
            }
            if (w.isError())
              return fail(protocols::parse_error_code(w.getError().getCode().cStr()),
                          w.getError().getMessage().cStr());
          }
        } catch (const kj::Exception&) {
        }
        return fail(error_code::internal, "malformed answer from " + target);
      });
  }

private:
  front_context& ctx_;
};

class analytics_server final : public api::Analytics::Server {
public:
  analytics_server(front_context& ctx) : ctx_(ctx), client_(ctx) {}

  kj::Promise<void> generateReport(GenerateReportContext c) override {
    capnp::MallocMessageBuilder mb;
    mb.initRoot<rp::ApiCall>().setGenerate(c.getParams().getRequest());
    return report(c, message_bytes(mb), c.getParams().getProgress(), c.getParams().hasProgress());
  }

  kj::Promise<void> submit(SubmitContext c) override {
    capnp::MallocMessageBuilder mb;
    mb.initRoot<rp::ApiCall>().setSubmit(c.getParams().getRequest());
    // The answer comes at once; progress keeps flowing until the report ends.
    return report(c, message_bytes(mb), c.getParams().getProgress(), c.getParams().hasProgress(),
                  false);
  }

  kj::Promise<void> status(StatusContext c) override {
    capnp::MallocMessageBuilder mb;
    mb.initRoot<rp::ApiCall>().setStatus(c.getParams().getReportId());
    return report(c, message_bytes(mb), nullptr, false);
  }

  kj::Promise<void> cancel(CancelContext c) override {
    capnp::MallocMessageBuilder mb;
    mb.initRoot<rp::ApiCall>().setCancel(c.getParams().getReportId());
    return report(c, message_bytes(mb), nullptr, false);
  }

  kj::Promise<void> fetchResult(FetchResultContext c) override {
    capnp::MallocMessageBuilder mb;
    auto f = mb.initRoot<rp::ApiCall>().initFetch();
    f.setRef(c.getParams().getRef());
    f.setOffset(c.getParams().getOffset());
    f.setLimit(c.getParams().getLimit());
    return client_.fetch_call(message_bytes(mb)).then([c](std::string bytes) mutable {
      with_message<rp::ResultPage>(bytes, [&](rp::ResultPage::Reader page) {
        c.getResults().setPage(page);
        return 0;
      });
    });
  }

  kj::Promise<void> list(ListContext c) override {
    return client_.list(c.getParams().getNode().cStr()).then([c](std::string bytes) mutable {
      with_message<rp::ReportList>(bytes, [&](rp::ReportList::Reader l) {
        c.getResults().setList(l);
        return 0;
      });
    });
  }

private:
  template <class Context>
  kj::Promise<void> report(Context c, std::string call, api::ProgressSink::Client sink,
                           bool has_sink, bool close_on_reply = true) {
    std::shared_ptr<feed> updates;
    if (has_sink) {
      updates = std::make_shared<feed>(progress_backlog, feed::overflow::drop_oldest);
      ctx_.tasks.add(forward(updates, kj::mv(sink)));
    }
    return client_.report_call(kj::mv(call), updates)
      .then([c, updates, close_on_reply](std::string bytes) mutable {
        with_message<rp::ReportResponse>(bytes, [&](rp::ReportResponse::Reader resp) {
          // A report that never started (refused) or ended sends no more progress.
          auto st = resp.getStatus();
          bool live = st == rp::ReportStatus::PENDING || st == rp::ReportStatus::RUNNING;
          if (updates && (close_on_reply || !live))
            updates->close();
          c.getResults().setResponse(resp);
          return 0;
        });
      });
  }

  // Sends the updates in order, one at a time (the next once the caller took this one); a
  // caller whose sink fails just stops getting updates, and the feed stays bounded.
  static kj::Promise<void> forward(std::shared_ptr<feed> updates, api::ProgressSink::Client sink) {
    return updates->next().then(
      [updates, sink](std::optional<std::string> bytes) mutable -> kj::Promise<void> {
        if (!bytes)
          return kj::READY_NOW;
        auto req = sink.progressRequest();
        bool last = with_message<rp::Progress>(*bytes, [&](rp::Progress::Reader p) {
          req.setProgress(p);
          auto st = p.getStatus();
          return st != rp::ReportStatus::PENDING && st != rp::ReportStatus::RUNNING;
        });
        if (last) {
          updates->close(); // the report ended: this is the last update
          return req.send().ignoreResult().then([] {}, [](kj::Exception&&) {});
        }
        return req.send().ignoreResult().then(
          [updates, sink]() mutable { return forward(updates, sink); },
          [updates](kj::Exception&&) { updates->close(); });
      });
  }

  front_context& ctx_;
  service_client client_;
};

// -- HTTP --

http_response json_answer(unsigned status, const nlohmann::json& j) {
  return http_response::json(status, j.dump());
}

http_response report_answer(const std::string& bytes) {
  return with_message<rp::ReportResponse>(bytes, [](rp::ReportResponse::Reader r) {
    auto res = json_answer(http_status(r), to_json(r));
    if (protocols::parse_error_code(r.getErrorCode().cStr()) == error_code::resource_exhausted)
      res.headers.emplace_back("Retry-After", retry_after_s);
    return res;
  });
}

std::string id_call(const std::string& id, bool cancel) {
  capnp::MallocMessageBuilder mb;
  auto call = mb.initRoot<rp::ApiCall>();
  if (cancel)
    call.setCancel(id);
  else
    call.setStatus(id);
  return message_bytes(mb);
}

class analytics_front final : public module_front {
public:
  explicit analytics_front(front_context& ctx) : ctx_(ctx), client_(ctx) {}

  kj::Maybe<capnp::Capability::Client> capability() override {
    return capnp::Capability::Client(kj::heap<analytics_server>(ctx_));
  }

  void add_routes(route_table& routes) override {
    routes.add("POST", "/v1/reports", [this](http_request& req) -> kj::Promise<http_response> {
      auto call = api_call_from_json(req.body);
      if (!call)
        return http_response::error(400, "INVALID_ARGUMENT", message_of(call.error()));
      return client_.report_call(std::move(*call), nullptr).then([](std::string bytes) { return report_answer(bytes); });
    });
    routes.add("GET", "/v1/reports", [this](http_request&) {
      return client_.list("").then([](std::string bytes) {
        return with_message<rp::ReportList>(bytes, [](rp::ReportList::Reader l) {
          auto code = protocols::parse_error_code(l.getErrorCode().cStr());
          return json_answer(code == error_code::none ? 200 : protocols::http_status(code),
                             to_json(l));
        });
      });
    });
    routes.add("GET", "/v1/reports/{}", [this](http_request& req) {
      return client_.report_call(id_call(req.params[0], false), nullptr).then([](std::string bytes) { return report_answer(bytes); });
    });
    routes.add("DELETE", "/v1/reports/{}", [this](http_request& req) {
      return client_.report_call(id_call(req.params[0], true), nullptr).then([](std::string bytes) { return report_answer(bytes); });
    });
    routes.add("GET", "/v1/reports/{}/rows", [this](http_request& req) -> kj::Promise<http_response> {
      uint64_t at[2] = {0, 0};
      const char* keys[2] = {"offset", "limit"};
      for (int k = 0; k < 2; ++k) {
        if (!req.has_query(keys[k]))
          continue;
        auto v = req.query_value(keys[k]);
        char* end = nullptr;
        at[k] = std::strtoull(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || v[0] == '-')
          return http_response::error(400, "INVALID_ARGUMENT",
                                      std::string(keys[k]) + " must be a number");
      }
      capnp::MallocMessageBuilder mb;
      auto f = mb.initRoot<rp::ApiCall>().initFetch();
      f.setRef(req.params[0]);
      f.setOffset(at[0]);
      f.setLimit(static_cast<uint32_t>(std::min<uint64_t>(at[1], ad::result_page_rows)));
      return client_.fetch_call(message_bytes(mb)).then([](std::string bytes) {
        return with_message<rp::ResultPage>(bytes, [](rp::ResultPage::Reader p) {
          auto j = to_json(p); // a malformed page becomes error_code INTERNAL
          auto code = protocols::parse_error_code(j.value("error_code", std::string{}));
          return json_answer(code == error_code::none ? 200 : protocols::http_status(code), j);
        });
      });
    });
  }

private:
  front_context& ctx_;
  service_client client_;
};

} // namespace

std::unique_ptr<module_front> make_analytics_front(front_context& ctx) {
  return std::make_unique<analytics_front>(ctx);
}

} // namespace wharf::actors
