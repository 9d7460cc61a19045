#include "actors/analytics/coordinator.hpp"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include <capnp/message.h>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/analytics/atoms.hpp"
#include "actors/analytics/capnp_text.hpp"
#include "actors/analytics/chunk_codec.hpp"
#include "actors/analytics/plan_codec.hpp"
#include "actors/analytics/report_memory.hpp"
#include "actors/analytics/response_codec.hpp"
#include "actors/analytics/result_store.hpp"
#include "actors/analytics/single_sql.hpp"
#include "actors/analytics/sorted_partial.hpp"
#include "protocols/analytics.capnp.h"
#include "protocols/capnp_io.hpp"
#include "runtime/core/logging.hpp"
#include "runtime/core/types.hpp"
#include "runtime/pg/pg_connection.hpp"

namespace wharf::actors::analytics_detail {

using protocols::flat_reader;
using protocols::message_bytes;
using namespace wharf::runtime;
namespace rp = wharf::reports;
using steady = std::chrono::steady_clock;

namespace {

struct part_state {
  partition p;
  enum { queued, running, done } st = queued;
  std::string node;
  unsigned attempts = 0;
  uint64_t token = 0;
  steady::time_point sent;
};

// How long a read may go unanswered before the coordinator asks its node whether it has it
// (CAF may lose a message while two nodes settle their connection).
constexpr std::chrono::seconds probe_after{2};

struct worker_node {
  std::set<uint64_t> reads; // tokens of the reads in flight there
  bool dead = false;
  std::set<uint32_t> done;
  /// The collected chunks (a deque: `run`'s keys view into them, so they must not move) and
  /// their groups, decoded as each chunk arrives.
  std::deque<std::string> chunks;
  std::optional<sorted_partial> run;
  uint64_t collected = 0;
  void reset_collect() {
    run.reset();
    chunks.clear();
    collected = 0;
  }
  enum { idle, running, complete } collect = idle;
};

class coordinator {
public:
  coordinator(caf::event_based_actor* self, coord_args args)
    : self_(self), a_(std::move(args)), started_(steady::now()) {}

  void start() {
    // A detached actor: this thread logs for this report only.
    runtime::log_context::set_for_thread("services/analytics/" + a_.id, a_.trace);
    info_.id = a_.id;
    info_.trace = a_.trace;
    info_.node = a_.node;
    info_.status = rp::ReportStatus::RUNNING;
    self_->delayed_send(self_, a_.deadline, deadline_atom::value);
    if (!a_.pool) {
      fail(runtime::make_error(protocols::error_code::unavailable,
                      "no database configured (analytics.dsn or WHARF_PG_DSN)"));
      return;
    }
    // Planning blocks on PostgreSQL: fine here, this actor has its own thread.
    auto lease = a_.pool->acquire();
    if (!lease) {
      fail(runtime::make_error(protocols::error_code::unavailable,
                      "database unreachable: " + message_of(lease.error())));
      return;
    }
    auto plan = make_plan(**lease, a_.def, a_.params, a_.mode);
    if (!plan) {
      fail(plan.error());
      return;
    }
    plan->report_id = a_.id;
    plan_ = std::make_shared<report_plan>(std::move(*plan));
    info_.mode = plan_->mode;
    spdlog::info("report {} ({}): mode {} ({})", a_.id, a_.def.name, to_string(plan_->mode),
                 plan_->mode_reason);
    self_->send(self_, members_atom::value);
    self_->delayed_send(self_, probe_after, recheck_atom::value);
    wanted_ = a_.partitions;
    lease_ = std::move(*lease);
  }

  // The member table arrives; plan partitions over the live workers and start reading.
  void on_members(const protocols::admin_reply& r) {
    if (finished_)
      return;
    for (auto& m : r.members)
      if (m.status == protocols::member_status::alive
          && std::find(m.roles.begin(), m.roles.end(), "worker") != m.roles.end())
        nodes_[m.name];
    if (nodes_.empty()) {
      fail(runtime::make_error(protocols::error_code::unavailable, "no live worker node in the cluster"));
      return;
    }
    auto n = wanted_ ? wanted_ : 4 * a_.worker_threads * nodes_.size();
    auto parts = plan_partitions(*lease_, *plan_, n);
    if (!parts) {
      fail(parts.error());
      return;
    }
    // One snapshot for every partition, on every node: the planning connection exports it
    // and keeps its transaction open until the report ends (finish()).
    auto snap = export_snapshot(*lease_);
    if (!snap) {
      fail(snap.error());
      return;
    }
    plan_->snapshot = *snap;
    plan_->partitions = static_cast<uint32_t>(parts->size());
    for (auto& p : *parts) {
      part_state s;
      s.p = p;
      parts_.push_back(s);
    }
    info_.partitions = static_cast<uint32_t>(parts_.size());
    progress();
    pump();
  }

  void pump() {
    if (finished_ || finalizing_)
      return;
    bool any_alive = false;
    for (auto& [name, n] : nodes_) {
      if (n.dead)
        continue;
      any_alive = true;
      while (n.reads.size() < a_.cfg.readers) {
        auto run = next_run();
        if (run.empty())
          break;
        send_read(name, run);
      }
    }
    if (!any_alive) {
      fail(runtime::make_error(protocols::error_code::unavailable, "every worker node failed during the report"));
      return;
    }
    bool queued = std::any_of(parts_.begin(), parts_.end(),
                              [](const part_state& s) { return s.st == part_state::queued; });
    // A node is final for this report once nothing is left to hand out and it has no read in
    // flight: collect it now, while the others still read.
    if (!queued)
      for (auto& [name, n] : nodes_)
        if (!n.dead && n.reads.empty() && n.collect == worker_node::idle && !n.done.empty()) {
          n.collect = worker_node::running;
          n.reset_collect();
          collect(name);
        }
    bool all_read = std::all_of(parts_.begin(), parts_.end(),
                                [](const part_state& s) { return s.st == part_state::done; });
    if (!all_read)
      return;
    if (!read_logged_) {
      read_logged_ = true;
      spdlog::debug("report {}: all {} partitions read after {} ms", a_.id, parts_.size(),
                    elapsed());
    }
    bool all_collected = std::all_of(nodes_.begin(), nodes_.end(), [](const auto& kv) {
      auto& n = kv.second;
      return n.dead || n.done.empty() || n.collect == worker_node::complete;
    });
    if (all_collected) {
      finalizing_ = true;
      finalize();
    }
  }

  // The next read to hand out: the first queued partition, and in a pushdown plan the queued
  // partitions adjacent to it, up to an even share of what is queued per free reader. A
  // pushdown partition is a whole GROUP BY statement in PostgreSQL: fewer, larger statements
  // cost less (planning, round trips, JIT compilation), while the partitions stay the unit
  // of retries. Pull reads stream one partition each (the nodes aggregate while they read).
  std::vector<part_state*> next_run() {
    std::vector<part_state*> run;
    auto it = std::find_if(parts_.begin(), parts_.end(),
                           [](const part_state& s) { return s.st == part_state::queued; });
    if (it == parts_.end())
      return run;
    run.push_back(&*it);
    if (plan_->mode != read_mode::pushdown)
      return run;
    size_t queued = 0, free = 0;
    for (auto& s : parts_)
      queued += s.st == part_state::queued;
    for (auto& [name, n] : nodes_)
      if (!n.dead && n.reads.size() < a_.cfg.readers)
        free += a_.cfg.readers - n.reads.size();
    auto share = (queued + std::max<size_t>(free, 1) - 1) / std::max<size_t>(free, 1);
    for (auto next = it + 1; next != parts_.end() && run.size() < share; ++next) {
      if (next->st != part_state::queued || next->p.lo != run.back()->p.hi)
        break;
      run.push_back(&*next);
    }
    return run;
  }

  void send_read(const std::string& node, const std::vector<part_state*>& run) {
    // A node whose partial was (being) collected gets more rows: collect everything again.
    if (nodes_[node].collect != worker_node::idle)
      restart_collect();
    auto token = ++tokens_;
    std::vector<uint32_t> ids;
    for (auto* s : run) {
      s->st = part_state::running;
      s->node = node;
      s->token = token;
      s->sent = steady::now();
      ids.push_back(s->p.id);
    }
    nodes_[node].reads.insert(token);
    std::vector<partition> parts;
    for (auto* s : run)
      parts.push_back(s->p);
    call(node, encode_read_call(*plan_, parts, static_cast<uint32_t>(a_.deadline.count())),
         [this, node, ids, token](std::string& bytes) { on_read(node, ids, token, bytes); },
         [this, node, ids, token](caf::error& err) { on_call_error(node, ids, token, err); });
  }

  template <class F, class G>
  void call(const std::string& node, std::string payload, F ok, G err) {
    auto cluster = self_->system().registry().get<caf::actor>(cluster_name);
    if (!cluster) {
      fail(runtime::make_error(protocols::error_code::unavailable, "the node is stopping"));
      return;
    }
    self_->request(cluster, caf::infinite, call_atom::value, node, std::string(service_name),
                   std::move(payload))
      .then(std::move(ok), std::move(err));
  }

  part_state* current(const std::string& node, uint32_t id, uint64_t token) {
    if (finished_ || finalizing_ || id >= parts_.size())
      return nullptr;
    auto& s = parts_[id];
    if (s.st != part_state::running || s.node != node || s.token != token)
      return nullptr; // stale: the partition was re-dispatched meanwhile
    return &s;
  }

  // The partitions of a read that are still waiting for it (none once it is stale).
  std::vector<part_state*> live(const std::string& node, const std::vector<uint32_t>& ids,
                                uint64_t token) {
    std::vector<part_state*> out;
    for (auto id : ids)
      if (auto* s = current(node, id, token))
        out.push_back(s);
    return out;
  }

  void on_read(const std::string& node, const std::vector<uint32_t>& ids, uint64_t token,
               const std::string& bytes) {
    auto run = live(node, ids, token);
    if (run.empty())
      return;
    auto& n = nodes_[node];
    n.reads.erase(token);
    auto retry_all = [&](const std::string& why) {
      for (auto* s : run) {
        retry(*s, why);
        if (finished_)
          return;
      }
      pump();
    };
    flat_reader rd{bytes};
    try {
      if (!rd.ok())
        throw kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                            kj::str("malformed reply"));
      auto r = rd.get<rp::WorkerReply>();
      if (r.isDone()) {
        // Rows reached a node thought idle (its collect may have begun): collect it again.
        if (n.collect != worker_node::idle)
          restart_collect();
        for (auto* s : run) {
          s->st = part_state::done;
          n.done.insert(s->p.id);
          info_.done++;
        }
        info_.rows_read += r.getDone().getRowsRead();
        progress();
        pump();
        return;
      }
      if (r.isError()) {
        auto e = r.getError();
        auto code = protocols::parse_error_code(str(e.getCode()));
        auto msg = str(e.getMessage());
        if (code == protocols::error_code::unavailable || code == protocols::error_code::internal) {
          retry_all(node + ": " + msg);
          return;
        }
        if (code == protocols::error_code::cancelled && finished_)
          return;
        fail(runtime::make_error(code, msg, str(e.getSqlstate())));
        return;
      }
      retry_all(node + ": unexpected reply");
    } catch (const kj::Exception& e) {
      retry_all(node + ": malformed reply: " + e.getDescription().cStr());
    }
  }

  // Every probe_after: ask each node with reads older than that which partitions it has.
  // A read it neither has nor had was lost on the way: send it again (the node answers a
  // duplicate from the same read, so nothing is read twice).
  void on_probe_tick() {
    if (finished_ || finalizing_)
      return;
    auto now = steady::now();
    std::set<std::string> ask;
    for (auto& s : parts_)
      if (s.st == part_state::running && now - s.sent >= probe_after && !nodes_[s.node].dead)
        ask.insert(s.node);
    for (auto& node : ask) {
      capnp::MallocMessageBuilder mb;
      mb.initRoot<rp::WorkerCall>().setProbe(text(a_.id));
      auto asked = now;
      call(node, message_bytes(mb),
           [this, node, asked](std::string& bytes) { on_known(node, asked, bytes); },
           [](caf::error&) {}); // a failing node shows up through its reads
    }
    self_->delayed_send(self_, probe_after, recheck_atom::value);
  }

  void on_known(const std::string& node, steady::time_point asked, const std::string& bytes) {
    if (finished_ || finalizing_)
      return;
    std::set<uint32_t> merged, active;
    try {
      flat_reader rd{bytes};
      if (!rd.ok())
        return;
      auto r = rd.get<rp::WorkerReply>();
      if (!r.isKnown())
        return;
      for (auto id : r.getKnown().getMerged())
        merged.insert(id);
      for (auto id : r.getKnown().getActive())
        active.insert(id);
    } catch (const kj::Exception&) {
      return;
    }
    bool changed = false;
    std::set<uint64_t> touched;
    for (auto& s : parts_) {
      if (s.st != part_state::running || s.node != node || s.sent > asked - probe_after)
        continue;
      if (merged.count(s.p.id)) {
        // Read, but the answer was lost.
        s.st = part_state::done;
        touched.insert(s.token);
        nodes_[node].done.insert(s.p.id);
        info_.done++;
        changed = true;
      } else if (!active.count(s.p.id)) {
        spdlog::warn("report {}: the read of partition {} never reached {}; sending it again",
                     a_.id, s.p.id, node);
        touched.insert(s.token);
        retry(s, "the request to " + node + " was lost");
        changed = true;
      }
      if (finished_)
        return;
    }
    // A read is over once none of its partitions waits for it any more (part of a run may
    // still be read there: its reply is still to come).
    for (auto token : touched)
      if (std::none_of(parts_.begin(), parts_.end(), [&](const part_state& s) {
            return s.st == part_state::running && s.node == node && s.token == token;
          }))
        nodes_[node].reads.erase(token);
    if (changed) {
      progress();
      pump();
    }
  }

  void retry(part_state& s, const std::string& why) {
    s.st = part_state::queued;
    s.node.clear();
    ++info_.retries;
    if (++s.attempts >= a_.cfg.max_attempts)
      fail(runtime::make_error(protocols::error_code::unavailable,
                      "partition " + std::to_string(s.p.id) + " failed "
                        + std::to_string(s.attempts) + " times; last: " + why));
    else
      spdlog::warn("report {}: partition {} re-queued ({})", a_.id, s.p.id, why);
  }

  // A node failed (down, unknown, stopping, no service): everything it read for us is gone.
  void node_failed(const std::string& node, const std::string& why) {
    if (finalizing_)
      return;
    auto& n = nodes_[node];
    if (n.dead)
      return;
    n.dead = true;
    n.reads.clear();
    n.done.clear();
    n.reset_collect();
    spdlog::warn("report {}: worker {} failed ({}); re-dispatching its partitions", a_.id, node,
                 why);
    for (auto& s : parts_) {
      if (s.node != node || s.st == part_state::queued)
        continue;
      if (s.st == part_state::done)
        info_.done--;
      retry(s, node + " failed: " + why);
      if (finished_)
        return;
    }
    restart_collect();
    progress();
  }

  // Partitions move to other nodes, whose partials change: whatever was collected so far is
  // stale (answers still in flight are recognised by their round and dropped).
  void restart_collect() {
    ++collect_round_;
    for (auto& [name, m] : nodes_) {
      m.reset_collect();
      m.collect = worker_node::idle;
    }
  }

  void on_call_error(const std::string& node, const std::vector<uint32_t>& ids, uint64_t token,
                     caf::error& err) {
    if (finished_)
      return;
    if (live(node, ids, token).empty() && nodes_[node].dead)
      return;
    node_failed(node, describe(err));
    pump();
  }

  // -- collect --

  void collect(const std::string& node) {
    capnp::MallocMessageBuilder mb;
    auto c = mb.initRoot<rp::WorkerCall>().initCollect();
    c.setReportId(text(a_.id));
    c.setOffset(nodes_[node].collected);
    c.setLimit(chunk_groups);
    auto round = collect_round_;
    call(node, message_bytes(mb),
         [this, node, round](std::string& bytes) { on_chunk(node, round, std::move(bytes)); },
         [this, node, round](caf::error& err) {
           if (finished_ || finalizing_ || round != collect_round_)
             return;
           node_failed(node, describe(err));
           pump();
         });
  }

  void on_chunk(const std::string& node, uint64_t round, std::string bytes) {
    auto& n = nodes_[node];
    if (finished_ || finalizing_ || round != collect_round_ || n.collect != worker_node::running)
      return;
    try {
      flat_reader rd{bytes};
      if (!rd.ok())
        throw kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                            kj::str("malformed chunk"));
      auto r = rd.get<rp::WorkerReply>();
      if (!r.isChunk()) {
        auto msg = r.isError() ? str(r.getError().getMessage()) : std::string("not a chunk");
        node_failed(node, "collect: " + msg);
        pump();
        return;
      }
      auto c = r.getChunk();
      std::set<uint32_t> has;
      for (auto p : c.getPartitionIds())
        has.insert(p);
      if (has != n.done) {
        if (reconcile(node, n, has))
          pump();
        return;
      }
      n.collected += c.getGroups();
      auto total = c.getTotalGroups();
      bool more = n.collected < total && c.getGroups() > 0;
      // Ask for the next chunk first: the node encodes and sends it while this one decodes
      // (and other nodes still sort or send theirs).
      if (more)
        collect(node);
      n.chunks.push_back(std::move(bytes));
      if (!n.run) {
        n.run.emplace(plan_->spec());
        // Room for the node's whole run, so the vectors do not grow by copying. Both counts
        // are the node's word, checked only by append_chunk: bounded by a few times what this
        // chunk's bytes could hold (a group takes two bytes at least) and by 4M groups.
        uint64_t could = std::min<uint64_t>(c.getGroups(), n.chunks.back().size() / 2);
        n.run->reserve(std::min<uint64_t>(
          {total, 4 * std::max<uint64_t>(could, 1), uint64_t{4} << 20}));
      }
      auto t0 = steady::now();
      if (auto ok = append_chunk(*n.run, n.chunks.back()); !ok) {
        node_failed(node, "collect: " + message_of(ok.error())); // drops the next chunk too
        pump();
        return;
      }
      spdlog::trace("report {}: chunk of {} groups ({} bytes) from {} at {} ms, decoded in {} us",
                    a_.id, c.getGroups(), n.chunks.back().size(), node, elapsed(),
                    std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0)
                      .count());
      if (more)
        return;
      n.collect = worker_node::complete;
    } catch (const kj::Exception& e) {
      node_failed(node, std::string("collect: ") + e.getDescription().cStr());
    } catch (const std::bad_alloc&) {
      node_failed(node, "collect: out of memory");
    }
    pump();
  }

  // A node's partial covers other partitions (`has`) than the reads it answered: it failed
  // when some were never given to it, else it lost some (read them again) and its partial is
  // collected anew. False when that ended the report.
  bool reconcile(const std::string& node, worker_node& n, const std::set<uint32_t>& has) {
    if (!std::includes(n.done.begin(), n.done.end(), has.begin(), has.end())) {
      // Partitions we never gave it (a restarted node?): trust none of it.
      node_failed(node, "its partial covers other partitions than it reported");
      return true;
    }
    // A reader failed after reading these (its table went with it): read them again.
    for (auto id : n.done)
      if (!has.count(id) && id < parts_.size()) {
        info_.done--;
        retry(parts_[id], node + " lost the partition's rows");
        if (finished_)
          return false;
      }
    n.done = has;
    restart_collect();
    return true;
  }

  // -- the answer --

  void finalize() {
    spdlog::debug("report {}: partials collected after {} ms", a_.id, elapsed());
    // Each node's chunks form one sorted run; the runs merge in one streaming pass and the
    // rows come out in key order. Keys view into the chunks, kept until the answer is built.
    auto spec = plan_->spec();
    std::vector<const sorted_partial*> ptrs;
    for (auto& [name, n] : nodes_)
      if (n.run && n.run->size() > 0)
        ptrs.push_back(&*n.run);
    auto total = merge_sorted(ptrs, spec);
    spdlog::debug("report {}: {} groups merged after {} ms", a_.id, total.size(), elapsed());
    auto cols = result_columns(*plan_);
    info_.status = rp::ReportStatus::DONE;
    info_.elapsed_ms = elapsed();
    if (total.size() <= a_.cfg.large_result_rows) {
      capnp::MallocMessageBuilder mb;
      auto b = mb.initRoot<rp::ReportResponse>();
      fill(b, info_);
      write_columns(b.initColumns(static_cast<unsigned>(cols.size())), cols);
      write_rows(b.initRows(static_cast<unsigned>(total.size())), total, 0);
      b.setTotalRows(total.size());
      release_chunks();
      finish(message_bytes(mb));
      return;
    }
    store_result(total, cols);
    release_chunks();
  }

  void release_chunks() {
    for (auto& [name, n] : nodes_)
      n.reset_collect();
  }

  // Large results: stored as pages (see result_store), then the answer names the reference.
  void store_result(const sorted_partial& total,
                    const std::vector<std::pair<std::string, std::string>>& cols) {
    auto rows = total.size();
    auto puts = result_store::entries(total, cols);
    if (!puts) {
      fail(puts.error());
      return;
    }
    spdlog::debug("report {}: {} result pages encoded after {} ms", a_.id, puts->size() - 1,
                  elapsed());
    result_store::save(
      self_, a_.root, a_.id, std::move(*puts),
      [this, rows, cols] {
        if (finished_)
          return;
        info_.elapsed_ms = elapsed();
        capnp::MallocMessageBuilder mb;
        auto b = mb.initRoot<rp::ReportResponse>();
        fill(b, info_);
        write_columns(b.initColumns(static_cast<unsigned>(cols.size())), cols);
        b.setResultRef(text(a_.id));
        b.setTotalRows(rows);
        finish(message_bytes(mb));
      },
      [this](const caf::error& err) { fail(err); });
  }

  uint64_t elapsed() const {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   steady::now() - started_)
                                   .count());
  }

  void progress() {
    self_->send(a_.service, progress_atom::value, a_.id, info_.done, info_.partitions,
                info_.rows_read);
  }

  void fail(const caf::error& err) {
    if (finished_)
      return;
    auto re = to_report_error(err);
    spdlog::warn("report {} ({}) {}: {}", a_.id, a_.def.name,
                 to_string(static_cast<protocols::error_code>(re.code())), message_of(re));
    capnp::MallocMessageBuilder mb;
    auto b = mb.initRoot<rp::ReportResponse>();
    set_error(info_, re);
    info_.elapsed_ms = elapsed();
    fill(b, info_);
    finish(message_bytes(mb));
  }

  void finish(std::string response) {
    if (finished_)
      return;
    finished_ = true;
    if (info_.status == rp::ReportStatus::DONE)
      spdlog::info("report {} ({}) done in {} ms: {} partitions, {} retries, mode {}", a_.id,
                   a_.def.name, info_.elapsed_ms, info_.partitions, info_.retries,
                   to_string(info_.mode));
    self_->send(a_.service, finished_atom::value, a_.id, std::move(response));
    // Every node we used drops its partial (and stops its readers if any still run).
    capnp::MallocMessageBuilder mb;
    mb.initRoot<rp::WorkerCall>().setRelease(text(a_.id));
    auto release = message_bytes(mb);
    auto cluster = self_->system().registry().get<caf::actor>(cluster_name);
    if (cluster)
      for (auto& [name, n] : nodes_) // dead ones too: a node marked dead may still run
        caf::anon_send(cluster, call_atom::value, name, std::string(service_name), release);
    if (lease_)
      (void) lease_->query("ROLLBACK"); // ends the exported snapshot's transaction
    lease_ = pg_pool::lease{};
    self_->quit();
  }

  void on_deadline() {
    auto asked = a_.deadline + a_.queued;
    fail(runtime::make_error(protocols::error_code::timeout,
                             "the report did not finish within " + std::to_string(asked.count())
                               + " ms" + (a_.queued.count() > 0
                                            ? " (" + std::to_string(a_.queued.count())
                                                + " ms of it waiting to start)"
                                            : std::string{})));
  }

  void on_cancel() { fail(runtime::make_error(protocols::error_code::cancelled, "cancelled by the caller")); }

private:
  caf::event_based_actor* self_;
  report_activity busy_;
  coord_args a_;
  steady::time_point started_;
  std::shared_ptr<report_plan> plan_;
  pg_pool::lease lease_;
  size_t wanted_ = 0;
  response_info info_;
  std::vector<part_state> parts_;
  std::map<std::string, worker_node> nodes_;
  uint64_t tokens_ = 0;
  uint64_t collect_round_ = 0;
  bool finalizing_ = false; // every partial is in: no event changes the answer any more
  bool read_logged_ = false;
  bool finished_ = false;
};

} // namespace

caf::behavior coordinator_impl(caf::event_based_actor* self, coord_args args) {
  auto c = std::make_shared<coordinator>(self, std::move(args));
  self->send(self, start_atom::value);
  return {
    [c](start_atom) { c->start(); },
    [c, self](members_atom) {
      auto cluster = self->system().registry().get<caf::actor>(cluster_name);
      if (!cluster) {
        c->fail(runtime::make_error(protocols::error_code::unavailable, "the node is stopping"));
        return;
      }
      protocols::admin_request req;
      req.command = protocols::admin_command::members;
      self->request(cluster, store_timeout, admin_atom::value, std::move(req))
        .then([c](protocols::admin_reply& r) { c->on_members(r); },
              [c](caf::error& err) {
                c->fail(runtime::make_error(protocols::error_code::unavailable,
                                            "cannot read the member table: " + describe(err)));
              });
    },
    [c](deadline_atom) { c->on_deadline(); },
    [c](recheck_atom) { c->on_probe_tick(); },
    [c](cancel_atom) { c->on_cancel(); },
  };
}

} // namespace wharf::actors::analytics_detail
