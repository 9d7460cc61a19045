// messaging_bench: node-to-node request/response between two CAF 0.17 nodes on loopback,
// Cap'n Proto envelope versus CAF's native serialization of the same data.
//
// What it measures, per payload size (32 B and 4096 B) and per contender:
//   - throughput (msgs/s): N echo requests with a fixed window in flight (default 64), sent by
//     an event-based driver actor with `request(...).then(...)`; time from the first send to
//     the last checked reply;
//   - latency p50/p99 (us): sequential blocking round trips from a `scoped_actor`; the clock
//     starts before the request is built and stops when the reply is decoded.
//   - CPU per message (us/msg): user+sys CPU time of the client and of the server process over
//     each throughput case, divided by N (the server reports its own via `cpu_atom`). It
//     includes CAF's scheduler polling and is steadier than wall-clock figures on a busy box.
// Contenders carry the same data (seq, sent_nanos, payload of S bytes):
//   - capnp:  request (wire_atom, std::string) holding `protocols::encode(envelope{bench_echo})`;
//             the server decodes it and replies with the re-encoded envelope, the client
//             decodes the reply (full decode + encode on each side);
//   - native: request (bench_echo); CAF serializes the struct and the server echoes it back.
// Each case runs R times (default 3), contenders interleaved and the order swapped every
// other run (capnp, native | native, capnp | ...); the summary reports medians and the median
// of the per-run ratios capnp/native. A warm-up pass (run 0, not reported) comes first.
// Every reply is checked (seq, sent_nanos, payload size and bytes); a mismatch exits 1.
//
// Setup: two processes, started by bench/messaging/run.sh:
//   messaging_bench serve --port P     publishes the echo actor on 127.0.0.1:P (until SIGTERM)
//   messaging_bench client --port P [--count N] [--latency-count L] [--runs R] [--window W]
// Output: human lines plus machine-readable `name,run,value,unit` lines. Exit codes: 0 done,
// 1 answer mismatch / request failure / cannot connect, 2 usage error.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <future>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "protocols/codec.hpp"
#include "protocols/messages.hpp"
#include "runtime/core/types.hpp"

namespace {

using namespace wharf;
using protocols::bench_echo;
using runtime::wire_atom;
// Asks the server for the CPU time it used so far (microseconds).
using cpu_atom = caf::atom_constant<caf::atom("cpu")>;
using clock_type = std::chrono::steady_clock;

enum class contender : uint8_t { capnp, native };

const char* to_string(contender x) {
  return x == contender::capnp ? "capnp" : "native";
}

constexpr contender contenders[] = {contender::capnp, contender::native};
constexpr size_t payload_sizes[] = {32, 4096};

// Bounds that keep a mistyped option from running for hours.
constexpr uint64_t max_count = 1'000'000;
constexpr uint64_t max_latency_count = 100'000;
constexpr unsigned max_runs = 15;
constexpr uint64_t max_window = 1024;

// Per-request deadline of the blocking latency loop, and watchdog of one throughput case
// (base plus a per-message allowance). CAF 0.17 does not fail pending requests when the peer
// dies, so everything is bounded; the throughput driver also monitors the server.
constexpr auto request_timeout = std::chrono::seconds{10};
constexpr auto case_deadline_base = std::chrono::seconds{60};
constexpr auto case_deadline_per_msg = std::chrono::microseconds{200};

// Warm-up per (contender, size) before the measured runs: connection, allocator, caches.
constexpr uint64_t warmup_count = 2000;
constexpr uint64_t warmup_latency_count = 200;

// User plus system CPU time of this whole process, in microseconds.
double process_cpu_us() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + t.tv_usec; };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

int64_t now_nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           clock_type::now().time_since_epoch())
    .count();
}

void configure(caf::actor_system_config& cfg) {
  cfg.load<caf::io::middleman>();
  runtime::add_types(cfg);
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
}

std::string make_payload(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i)
    s[i] = static_cast<char>('a' + i % 26);
  return s;
}

// Returns an empty string if `r` is the echo of (seq, sent, payload), else what differs.
std::string check_echo(const bench_echo& r, uint64_t seq, int64_t sent,
                       const std::string& payload) {
  if (r.seq != seq)
    return "seq: expected " + std::to_string(seq) + ", got " + std::to_string(r.seq);
  if (r.sent_nanos != sent)
    return "seq " + std::to_string(seq) + ": sent_nanos changed";
  if (r.payload.size() != payload.size())
    return "seq " + std::to_string(seq) + ": payload size expected "
           + std::to_string(payload.size()) + ", got " + std::to_string(r.payload.size());
  if (r.payload != payload)
    return "seq " + std::to_string(seq) + ": payload bytes differ";
  return {};
}

// Decodes a capnp reply into `out`; returns an empty string on success.
std::string decode_echo(const std::string& bytes, protocols::envelope& out) {
  auto env = protocols::decode(bytes);
  if (!env)
    return "decode: " + runtime::describe(env.error());
  if (!std::holds_alternative<bench_echo>(env->body))
    return "reply envelope does not hold a bench_echo";
  out = std::move(*env);
  return {};
}

// -- server --

caf::behavior echo_impl(caf::event_based_actor*) {
  return {
    [](wire_atom, const std::string& bytes) -> caf::result<std::string> {
      auto env = protocols::decode(bytes);
      if (!env)
        return std::move(env.error());
      if (!std::holds_alternative<bench_echo>(env->body))
        return runtime::make_error(runtime::runtime_errc::bad_request,
                                   "messaging_bench echoes only bench_echo");
      return protocols::encode(*env);
    },
    // Taking the struct by mutable reference lets CAF hand over the deserialized object
    // without a copy; the reply moves it into the response message.
    [](bench_echo& x) { return std::move(x); },
    // Lets the client account the server's CPU time per throughput case.
    [](cpu_atom) { return process_cpu_us(); },
  };
}

int serve(uint16_t port) {
  // Threads created from here on inherit the mask; the main thread takes the signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  caf::actor_system_config cfg;
  configure(cfg);
  caf::actor_system sys{cfg};
  auto echo = sys.spawn(echo_impl);
  auto bound = sys.middleman().publish(echo, port, "127.0.0.1", true);
  if (!bound) {
    std::cerr << "messaging_bench serve: cannot publish on 127.0.0.1:" << port << ": "
              << runtime::describe(bound.error()) << '\n';
    caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
    return 1;
  }
  std::cout << "messaging_bench: serving on 127.0.0.1:" << *bound << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  return 0;
}

// -- client: throughput --

struct outcome {
  std::string error; ///< empty = every reply checked out
  double seconds = 0;
};

struct driver_state {
  caf::actor server;
  contender kind = contender::capnp;
  std::shared_ptr<const std::string> payload;
  protocols::envelope request_env; ///< reused for every capnp request (no payload copy)
  uint64_t first_seq = 0;
  uint64_t count = 0;
  uint64_t sent = 0;
  uint64_t done = 0;
  clock_type::time_point start;
  std::shared_ptr<std::promise<outcome>> result;
  bool finished = false;
};

using driver_actor = caf::stateful_actor<driver_state>;

void finish(driver_actor* self, std::string error) {
  auto& st = self->state;
  if (st.finished)
    return;
  st.finished = true;
  outcome o;
  o.error = std::move(error);
  o.seconds = std::chrono::duration<double>(clock_type::now() - st.start).count();
  st.result->set_value(std::move(o));
  self->quit();
}

void send_next(driver_actor* self);

void on_echo(driver_actor* self, const bench_echo& r, uint64_t seq, int64_t sent) {
  auto& st = self->state;
  if (st.finished)
    return;
  if (auto why = check_echo(r, seq, sent, *st.payload); !why.empty())
    return finish(self, std::move(why));
  if (++st.done == st.count)
    return finish(self, {});
  if (st.sent < st.count)
    send_next(self);
}

void send_next(driver_actor* self) {
  auto& st = self->state;
  auto seq = st.first_seq + st.sent++;
  auto sent = now_nanos();
  auto on_error = [self, seq](caf::error& err) {
    finish(self, "seq " + std::to_string(seq) + ": request failed: " + runtime::describe(err));
  };
  // No per-request timeout here: a finite one arms a timer per message, which would add the
  // same clock work to both contenders. The caller's watchdog bounds the whole case.
  if (st.kind == contender::capnp) {
    auto& body = std::get<bench_echo>(st.request_env.body);
    body.seq = seq;
    body.sent_nanos = sent;
    st.request_env.trace_id = seq;
    self->request(st.server, caf::infinite, wire_atom::value, protocols::encode(st.request_env))
      .then(
        [self, seq, sent](const std::string& bytes) {
          protocols::envelope env;
          if (auto why = decode_echo(bytes, env); !why.empty())
            return finish(self, "seq " + std::to_string(seq) + ": " + why);
          on_echo(self, std::get<bench_echo>(env.body), seq, sent);
        },
        on_error);
  } else {
    self->request(st.server, caf::infinite, bench_echo{seq, sent, *st.payload})
      .then([self, seq, sent](const bench_echo& r) { on_echo(self, r, seq, sent); }, on_error);
  }
}

caf::behavior driver_impl(driver_actor* self, caf::actor server, contender kind,
                          std::shared_ptr<const std::string> payload, uint64_t first_seq,
                          uint64_t count, uint64_t window,
                          std::shared_ptr<std::promise<outcome>> result) {
  auto& st = self->state;
  st.server = std::move(server);
  st.kind = kind;
  st.request_env = protocols::envelope{0, {}, bench_echo{0, 0, *payload}};
  st.payload = std::move(payload);
  st.first_seq = first_seq;
  st.count = count;
  st.result = std::move(result);
  self->monitor(st.server);
  self->set_down_handler([self](caf::down_msg& msg) {
    finish(self, "server went down: " + runtime::describe(msg.reason));
  });
  st.start = clock_type::now();
  for (uint64_t i = 0; i < std::min(window, count); ++i)
    send_next(self);
  // The driver only reacts to responses; this handler keeps the behavior non-empty.
  return {[](runtime::stop_atom) {}};
}

// Runs `count` pipelined requests; returns msgs/s or sets `error`.
double measure_throughput(caf::actor_system& sys, const caf::actor& server, contender kind,
                          const std::shared_ptr<const std::string>& payload, uint64_t first_seq,
                          uint64_t count, uint64_t window, std::string& error) {
  auto result = std::make_shared<std::promise<outcome>>();
  auto done = result->get_future();
  auto driver = sys.spawn(driver_impl, server, kind, payload, first_seq, count, window, result);
  auto deadline = std::chrono::duration_cast<std::chrono::seconds>(
    case_deadline_base + case_deadline_per_msg * count);
  if (done.wait_for(deadline) != std::future_status::ready) {
    caf::anon_send_exit(driver, caf::exit_reason::kill);
    error = "throughput case did not finish within " + std::to_string(deadline.count()) + " s";
    return 0;
  }
  auto o = done.get();
  if (!o.error.empty()) {
    error = std::move(o.error);
    return 0;
  }
  return static_cast<double>(count) / o.seconds;
}

// Asks the server for its process CPU time (us); sets `error` on failure.
double server_cpu_us(caf::actor_system& sys, const caf::actor& server, std::string& error) {
  caf::scoped_actor self{sys};
  double result = 0;
  self->request(server, request_timeout, cpu_atom::value)
    .receive([&](double us) { result = us; },
             [&](caf::error& err) { error = "CPU probe failed: " + runtime::describe(err); });
  return result;
}

// -- client: latency --

// Sequential round trips; appends one RTT in microseconds per message to `rtts` or sets
// `error`. The stop time is taken before the answer check, which both contenders share.
void measure_latency(caf::actor_system& sys, const caf::actor& server, contender kind,
                     const std::string& payload, uint64_t first_seq, uint64_t count,
                     std::vector<double>& rtts, std::string& error) {
  caf::scoped_actor self{sys};
  protocols::envelope request_env{0, {}, bench_echo{0, 0, payload}};
  auto on_error = [&](caf::error& err) { error = "request failed: " + runtime::describe(err); };
  for (uint64_t i = 0; i < count && error.empty(); ++i) {
    auto seq = first_seq + i;
    auto sent = now_nanos();
    int64_t stop = 0;
    if (kind == contender::capnp) {
      auto& body = std::get<bench_echo>(request_env.body);
      body.seq = seq;
      body.sent_nanos = sent;
      request_env.trace_id = seq;
      self
        ->request(server, request_timeout, wire_atom::value, protocols::encode(request_env))
        .receive(
          [&](const std::string& bytes) {
            protocols::envelope env;
            error = decode_echo(bytes, env);
            stop = now_nanos();
            if (error.empty())
              error = check_echo(std::get<bench_echo>(env.body), seq, sent, payload);
          },
          on_error);
    } else {
      self->request(server, request_timeout, bench_echo{seq, sent, payload})
        .receive(
          [&](const bench_echo& r) {
            stop = now_nanos();
            error = check_echo(r, seq, sent, payload);
          },
          on_error);
    }
    if (error.empty())
      rtts.push_back(static_cast<double>(stop - sent) / 1e3);
    else
      error = "seq " + std::to_string(seq) + ": " + error;
  }
}

// Nearest-rank percentile of a sorted sample.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty())
    return 0;
  auto rank = static_cast<size_t>(p * static_cast<double>(sorted.size()) + 0.999999);
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

double median(std::vector<double> xs) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  auto n = xs.size();
  return n % 2 == 1 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

std::string fixed(double x, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << x;
  return os.str();
}

// One row of figures: per run, per metric.
struct figures {
  std::vector<double> throughput; ///< msgs/s
  std::vector<double> p50;        ///< us
  std::vector<double> p99;        ///< us
  std::vector<double> cpu_client; ///< us/msg, throughput case
  std::vector<double> cpu_server; ///< us/msg, throughput case
};

void emit(const std::string& name, const std::string& run, double value, int digits,
          const char* unit) {
  std::cout << name << ',' << run << ',' << fixed(value, digits) << ',' << unit << '\n';
}

struct client_options {
  uint16_t port = 0;
  uint64_t count = 20'000;
  uint64_t latency_count = 2'000;
  unsigned runs = 3;
  uint64_t window = 64;
};

int client(const client_options& opt) {
  caf::actor_system_config cfg;
  configure(cfg);
  caf::actor_system sys{cfg};
  caf::actor server;
  // The server may still be binding when run.sh starts us: retry for a bounded time.
  for (int attempt = 0;; ++attempt) {
    auto h = sys.middleman().remote_actor("127.0.0.1", opt.port);
    if (h) {
      server = std::move(*h);
      break;
    }
    if (attempt == 50) {
      std::cerr << "messaging_bench client: cannot connect to 127.0.0.1:" << opt.port << ": "
                << runtime::describe(h.error()) << '\n';
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  std::cout << "# messaging_bench: 127.0.0.1:" << opt.port << ", " << opt.count
            << " msgs/throughput case (window " << opt.window << "), " << opt.latency_count
            << " round trips/latency case, " << opt.runs << " runs, median reported\n";
  uint64_t next_seq = 1;
  auto fail = [](const std::string& phase, const std::string& error) {
    std::cout.flush();
    std::cerr << "messaging_bench client: ANSWER MISMATCH or failure in " << phase << ": "
              << error << '\n';
    return 1;
  };
  // figs[size index][contender index]
  std::vector<std::vector<figures>> figs(std::size(payload_sizes),
                                         std::vector<figures>(std::size(contenders)));
  for (unsigned run = 0; run <= opt.runs; ++run) {
    // Run 0 is the warm-up and is not reported.
    bool warmup = run == 0;
    for (size_t si = 0; si < std::size(payload_sizes); ++si) {
      auto size = payload_sizes[si];
      auto payload = std::make_shared<const std::string>(make_payload(size));
      for (size_t slot = 0; slot < std::size(contenders); ++slot) {
        // Even runs swap the order (capnp, native, native, capnp, ...): the second slot of a
        // pair measured a few percent slower here, and a fixed order would bias the ratio.
        auto ci = run % 2 == 0 ? std::size(contenders) - 1 - slot : slot;
        auto kind = contenders[ci];
        auto label = std::string(to_string(kind)) + "_" + std::to_string(size) + "B";
        auto phase = label + (warmup ? " warm-up" : " run " + std::to_string(run));
        std::string error;
        auto n = warmup ? std::min(opt.count, warmup_count) : opt.count;
        auto server_cpu0 = server_cpu_us(sys, server, error);
        auto client_cpu0 = process_cpu_us();
        double tp = 0;
        if (error.empty())
          tp = measure_throughput(sys, server, kind, payload, next_seq, n, opt.window, error);
        auto cpu_client = (process_cpu_us() - client_cpu0) / static_cast<double>(n);
        auto server_cpu1 = error.empty() ? server_cpu_us(sys, server, error) : 0.0;
        auto cpu_server = (server_cpu1 - server_cpu0) / static_cast<double>(n);
        next_seq += n;
        if (!error.empty())
          return fail(phase + " throughput", error);
        std::vector<double> rtts;
        auto ln = warmup ? std::min(opt.latency_count, warmup_latency_count) : opt.latency_count;
        rtts.reserve(ln);
        measure_latency(sys, server, kind, *payload, next_seq, ln, rtts, error);
        next_seq += ln;
        if (!error.empty())
          return fail(phase + " latency", error);
        if (warmup)
          continue;
        std::sort(rtts.begin(), rtts.end());
        auto p50 = percentile(rtts, 0.50);
        auto p99 = percentile(rtts, 0.99);
        auto& f = figs[si][ci];
        f.throughput.push_back(tp);
        f.p50.push_back(p50);
        f.p99.push_back(p99);
        f.cpu_client.push_back(cpu_client);
        f.cpu_server.push_back(cpu_server);
        std::cout << "run " << run << "  " << std::left << std::setw(12) << label << std::right
                  << " throughput " << std::setw(8) << fixed(tp, 0) << " msgs/s   p50 "
                  << std::setw(7) << fixed(p50, 1) << " us   p99 " << std::setw(7)
                  << fixed(p99, 1) << " us   CPU/msg client " << fixed(cpu_client, 2)
                  << " us, server " << fixed(cpu_server, 2) << " us\n";
        auto rs = std::to_string(run);
        emit(label + "_throughput", rs, tp, 0, "msgs/s");
        emit(label + "_latency_p50", rs, p50, 1, "us");
        emit(label + "_latency_p99", rs, p99, 1, "us");
        emit(label + "_cpu_client", rs, cpu_client, 2, "us/msg");
        emit(label + "_cpu_server", rs, cpu_server, 2, "us/msg");
      }
    }
    std::cout.flush();
  }
  std::cout << "\n== median of " << opt.runs << " runs; ratio = median of per-run capnp/native ==\n";
  for (size_t si = 0; si < std::size(payload_sizes); ++si) {
    auto size = std::to_string(payload_sizes[si]) + "B";
    for (size_t ci = 0; ci < std::size(contenders); ++ci) {
      const auto& f = figs[si][ci];
      auto label = std::string(to_string(contenders[ci])) + "_" + size;
      auto tp = median(f.throughput), p50 = median(f.p50), p99 = median(f.p99);
      auto cc = median(f.cpu_client), cs = median(f.cpu_server);
      std::cout << std::left << std::setw(12) << label << std::right << " throughput "
                << std::setw(8) << fixed(tp, 0) << " msgs/s   p50 " << std::setw(7)
                << fixed(p50, 1) << " us   p99 " << std::setw(7) << fixed(p99, 1)
                << " us   CPU/msg client " << fixed(cc, 2) << " us, server " << fixed(cs, 2)
                << " us\n";
      emit(label + "_throughput", "median", tp, 0, "msgs/s");
      emit(label + "_latency_p50", "median", p50, 1, "us");
      emit(label + "_latency_p99", "median", p99, 1, "us");
      emit(label + "_cpu_client", "median", cc, 2, "us/msg");
      emit(label + "_cpu_server", "median", cs, 2, "us/msg");
    }
    const auto& c = figs[si][0];
    const auto& n = figs[si][1];
    std::vector<double> tp_ratio, p50_ratio, p99_ratio, cpu_ratio;
    for (size_t r = 0; r < c.throughput.size(); ++r) {
      tp_ratio.push_back(c.throughput[r] / n.throughput[r]);
      p50_ratio.push_back(c.p50[r] / n.p50[r]);
      p99_ratio.push_back(c.p99[r] / n.p99[r]);
      cpu_ratio.push_back((c.cpu_client[r] + c.cpu_server[r])
                          / (n.cpu_client[r] + n.cpu_server[r]));
    }
    auto tr = median(tp_ratio), lr = median(p50_ratio), l99 = median(p99_ratio);
    auto cr = median(cpu_ratio);
    std::cout << std::left << std::setw(12) << ("ratio_" + size) << std::right
              << " capnp/native: throughput " << fixed(tr, 3) << "x, p50 latency "
              << fixed(lr, 3) << "x, p99 latency " << fixed(l99, 3)
              << "x, CPU/msg (client+server) " << fixed(cr, 3) << "x\n";
    emit("ratio_" + size + "_throughput", "median", tr, 3, "capnp/native");
    emit("ratio_" + size + "_latency_p50", "median", lr, 3, "capnp/native");
    emit("ratio_" + size + "_latency_p99", "median", l99, 3, "capnp/native");
    emit("ratio_" + size + "_cpu", "median", cr, 3, "capnp/native");
  }
  std::cout << "answers: all " << next_seq - 1 << " echoes checked (seq, sent_nanos, payload)\n";
  std::cout.flush();
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"messaging_bench: request/response between two CAF nodes on 127.0.0.1,\n"
               "Cap'n Proto envelope vs CAF-native serialization. Start `serve` first, then\n"
               "`client` against the same port (bench/messaging/run.sh does both).",
               "messaging_bench"};
  app.require_subcommand(1);
  uint16_t serve_port = 0;
  client_options opt;
  auto* serve_cmd = app.add_subcommand("serve", "publish the echo actor on 127.0.0.1:PORT");
  serve_cmd->add_option("--port", serve_port, "TCP port")->required()->check(
    CLI::Range(1, 65535));
  auto* client_cmd = app.add_subcommand("client", "run the benchmark against a server");
  client_cmd->add_option("--port", opt.port, "server's TCP port")->required()->check(
    CLI::Range(1, 65535));
  client_cmd
    ->add_option("--count", opt.count, "messages per throughput case [default: 20000]")
    ->check(CLI::Range(uint64_t{1}, max_count));
  client_cmd
    ->add_option("--latency-count", opt.latency_count,
                 "round trips per latency case [default: 2000]")
    ->check(CLI::Range(uint64_t{1}, max_latency_count));
  client_cmd->add_option("--runs", opt.runs, "repetitions of every case [default: 3]")
    ->check(CLI::Range(1u, max_runs));
  client_cmd
    ->add_option("--window", opt.window, "requests in flight, throughput cases [default: 64]")
    ->check(CLI::Range(uint64_t{1}, max_window));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (serve_cmd->parsed())
    return serve(serve_port);
  return client(opt);
}
