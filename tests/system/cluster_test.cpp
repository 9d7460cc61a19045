// System tests: real wharf-node processes on loopback. Each case starts its own cluster on
// kernel-picked ports with a fresh data directory, and waits for conditions with a bound
// (never a fixed sleep). Failure messages name the phase, the nodes and the values seen.
#include <csignal>
#include <future>
#include <map>
#include <memory>
#include <fstream>
#include <random>
#include <sstream>

#include <boost/test/unit_test.hpp>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/registers/register_client.hpp"
#include "protocols/codec.hpp"
#include "runtime/core/types.hpp"
#include "runtime/rpc/admin_client.hpp"
#include "runtime/rpc/rpc_client.hpp"
#include "tests/support/expect.hpp"
#include "tests/support/node_process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace wharf;
using namespace std::chrono_literals;
using protocols::admin_command;
using protocols::admin_reply;
using protocols::admin_request;
using protocols::member_status;
using test::eventually;
using test::node_process;

namespace {

struct cluster_fixture {
  test::temp_dir dir{"wharf-system"};
  std::vector<std::unique_ptr<node_process>> nodes;

  /// Starts n nodes named n1..nN; n1 seeds itself, the others seed n1.
  void start(size_t n, const std::vector<std::string>& flags = {}) {
    for (size_t i = 1; i <= n; ++i) {
      uint16_t seed = nodes.empty() ? 0 : nodes[0]->port().cluster;
      nodes.push_back(std::make_unique<node_process>("n" + std::to_string(i),
                                                     dir.str() + "/data", dir.str(), seed));
      nodes.back()->start(flags);
    }
  }

  node_process& node(size_t i) { return *nodes.at(i - 1); }

  caf::expected<admin_reply> ask(size_t via, admin_request req) {
    runtime::admin_client client{"127.0.0.1", node(via).port().rpc, 30s};
    return client.call(req);
  }

  /// Writes `key` = `value` to the register of the node reached through `via`.
  caf::expected<actors::register_reply> put(size_t via, const std::string& key,
                                            const std::string& value) {
    runtime::rpc_client client{"127.0.0.1", node(via).port().rpc, 30s};
    return actors::register_put(client, "", key, value);
  }

  caf::expected<actors::register_reply> get(size_t via, const std::string& key) {
    runtime::rpc_client client{"127.0.0.1", node(via).port().rpc, 30s};
    return actors::register_get(client, "", key);
  }

  /// How `viewer` sees `name` ("alive", "down", "left", "absent", or "unreachable").
  std::string status(size_t viewer, const std::string& name) {
    auto r = ask(viewer, admin_request{admin_command::members, "", "", "", ""});
    if (!r || !r->error.empty())
      return "unreachable";
    for (auto& m : r->members)
      if (m.name == name)
        return to_string(m.status);
    return "absent";
  }

  uint64_t incarnation(size_t viewer, const std::string& name) {
    auto r = ask(viewer, admin_request{admin_command::members, "", "", "", ""});
    if (r)
      for (auto& m : r->members)
        if (m.name == name)
          return m.incarnation;
    return 0;
  }

  bool all_alive_everywhere() {
    for (auto& n : nodes)
      if (test::http_get(n->port().http, "/health") != 200)
        return false;
    for (size_t v = 1; v <= nodes.size(); ++v)
      for (auto& n : nodes)
        if (status(v, n->name()) != "alive")
          return false;
    return true;
  }

  std::string logs() {
    std::string out;
    for (auto& n : nodes)
      out += n->log_tail() + "\n";
    return out;
  }

  double stat(size_t via, const std::string& node_name, const std::string& stat_name) {
    auto r = ask(via, admin_request{admin_command::stats, node_name, "", "", ""});
    if (r)
      for (auto& s : r->stats)
        if (s.name == stat_name)
          return s.value;
    return -1;
  }

  void form(size_t n, const std::vector<std::string>& flags = {}) {
    start(n, flags);
    BOOST_REQUIRE_MESSAGE(eventually([&] { return all_alive_everywhere(); }),
                          "phase: forming a " << n << "-node cluster; not every node sees "
                                              << "every other alive\n" << logs());
  }
};

/// Connections to local `port` the kernel holds established (accepted or still queued).
int established_to(uint16_t port) {
  std::ifstream in{"/proc/net/tcp"};
  std::string line;
  std::getline(in, line); // header
  int n = 0;
  while (std::getline(in, line)) {
    std::istringstream ls{line};
    std::string slot, local, remote, state;
    ls >> slot >> local >> remote >> state;
    auto colon = local.find(':');
    if (colon != std::string::npos && state == "01"
        && std::stoul(local.substr(colon + 1), nullptr, 16) == port)
      ++n;
  }
  return n;
}

std::string console(uint16_t rpc_port, const std::string& cmd, int* rc) {
  std::string out;
  *rc = test::run_command({WHARF_CLI_BIN, "console", "--connect",
                           "127.0.0.1:" + std::to_string(rpc_port), "-c", cmd},
                          &out);
  return out;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(cluster, cluster_fixture)

BOOST_AUTO_TEST_CASE(three_nodes_converge_on_one_member_table) {
  form(3);
  std::vector<std::string> tables;
  for (size_t v = 1; v <= 3; ++v) {
    auto r = ask(v, admin_request{admin_command::members, "", "", "", ""});
    BOOST_REQUIRE(r);
    std::string t;
    for (auto& m : r->members)
      t += m.name + "@" + m.host + ":" + std::to_string(m.cluster_port) + "/"
           + std::to_string(m.rpc_port) + "/" + std::to_string(m.incarnation) + "/"
           + to_string(m.status) + ";";
    tables.push_back(t);
  }
  BOOST_TEST(tables[0] == tables[1]);
  BOOST_TEST(tables[0] == tables[2]);
  BOOST_TEST(std::count(tables[0].begin(), tables[0].end(), ';') == 3);
  BOOST_TEST(test::http_get(node(2).port().http, "/health") == 200);
  std::string metrics;
  BOOST_TEST(test::http_get(node(2).port().http, "/metrics", &metrics) == 200);
  BOOST_TEST(metrics.find("wharf_members_alive{node=\"n2\"} 3") != std::string::npos, metrics);
  // Mailbox sizes are sampled about once a second.
  BOOST_TEST(eventually([&] {
               test::http_get(node(2).port().http, "/metrics", &metrics);
               return metrics.find("wharf_mailbox_size{node=\"n2\",path=\"system/cluster\"}")
                      != std::string::npos;
             }),
             metrics);
  BOOST_TEST(test::http_get(node(2).port().http, "/nope") == 404);
}

BOOST_AUTO_TEST_CASE(sigkill_is_seen_by_both_survivors_and_a_restart_rejoins) {
  form(3);
  auto old_incarnation = incarnation(1, "n3");
  auto t0 = std::chrono::steady_clock::now();
  node(3).signal(SIGKILL);
  BOOST_REQUIRE(node(3).wait() == 128 + SIGKILL);
  BOOST_REQUIRE_MESSAGE(eventually([&] { return status(1, "n3") == "down" && status(2, "n3") == "down"; }),
                        "phase: detecting SIGKILL of n3; n1 sees " << status(1, "n3") << ", n2 sees "
                                                                   << status(2, "n3") << "\n" << logs());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  BOOST_TEST_MESSAGE("SIGKILL of n3 seen as down by n1 and n2 after " << ms.count() << " ms");
  // A request towards the dead node fails with a reason, not a timeout.
  auto r = ask(1, admin_request{admin_command::stats, "n3", "", "", ""});
  BOOST_REQUIRE(r);
  BOOST_TEST(r->error_code == "PEER_DOWN");
  node(3).start();
  BOOST_REQUIRE_MESSAGE(eventually([&] { return all_alive_everywhere(); }),
                        "phase: n3 rejoining after restart\n" << logs());
  BOOST_TEST(incarnation(1, "n3") > old_incarnation);
  BOOST_TEST(incarnation(2, "n3") == incarnation(1, "n3"));
}

BOOST_AUTO_TEST_CASE(a_frozen_node_is_marked_down_and_pending_requests_fail_at_once) {
  // Long request timeout: a request that ends early can only have been failed by detection.
  form(3);
  node(3).signal(SIGSTOP);
  auto pending = std::async(std::launch::async, [&] {
    runtime::admin_client client{"127.0.0.1", node(1).port().rpc, 60s};
    return client.call(admin_request{admin_command::stats, "n3", "", "", ""});
  });
  auto t0 = std::chrono::steady_clock::now();
  BOOST_REQUIRE_MESSAGE(pending.wait_for(60s) == std::future_status::ready,
                        "phase: request towards frozen n3 never ended\n" << logs());
  auto r = pending.get();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  BOOST_REQUIRE_MESSAGE(r, "phase: pending request; transport error " << test::why(r));
  BOOST_TEST(r->error_code == "PEER_DOWN", "error: " << r->error);
  BOOST_TEST_MESSAGE("request pending towards frozen n3 failed after " << ms.count()
                     << " ms with: " << r->error);
  BOOST_REQUIRE_MESSAGE(eventually([&] { return status(1, "n3") == "down" && status(2, "n3") == "down"; }),
                        "phase: detecting SIGSTOP of n3\n" << logs());
  BOOST_TEST(stat(1, "", "peer_down_failures_total") >= 1);
  node(3).signal(SIGCONT);
  BOOST_REQUIRE_MESSAGE(eventually([&] { return all_alive_everywhere(); }),
                        "phase: n3 thawed with SIGCONT should be alive again\n" << logs());
}

BOOST_AUTO_TEST_CASE(an_actor_killed_through_the_console_restarts_with_its_state) {
  form(2);
  int rc = -1;
  auto out = console(node(1).port().rpc, "put n2 color blue", &rc);
  BOOST_REQUIRE_MESSAGE(rc == 0, "put: " << out);
  out = console(node(1).port().rpc, "kill n2 services/register", &rc);
  BOOST_REQUIRE_MESSAGE(rc == 0, "kill: " << out);
  BOOST_TEST(out.find("crashed services/register on n2") != std::string::npos, out);
  BOOST_REQUIRE_MESSAGE(eventually([&] {
                          auto tree = console(node(1).port().rpc, "tree n2", &rc);
                          return rc == 0 && tree.find("register  [worker, permanent] running restarts=1")
                                              != std::string::npos;
                        }),
                        "phase: waiting for services/register to restart\n" << logs());
  out = console(node(1).port().rpc, "get n2 color", &rc);
  BOOST_TEST(rc == 0);
  BOOST_TEST(out == "blue\n");
  BOOST_TEST(stat(2, "", "restarts_total") >= 1);
}

BOOST_AUTO_TEST_CASE(acknowledged_state_survives_sigkill_of_the_node) {
  form(1);
  for (int i = 0; i < 50; ++i) {
    auto r = put(1, "k" + std::to_string(i), "v" + std::to_string(i));
    BOOST_REQUIRE_MESSAGE(r, test::why(r));
    BOOST_REQUIRE_MESSAGE(r->error.empty(), r->error);
  }
  node(1).signal(SIGKILL);
  BOOST_REQUIRE(node(1).wait() == 128 + SIGKILL);
  node(1).start();
  BOOST_REQUIRE_MESSAGE(eventually([&] { return test::http_get(node(1).port().http, "/health") == 200; }),
                        "phase: restart after SIGKILL\n" << logs());
  int missing = 0;
  for (int i = 0; i < 50; ++i) {
    auto r = get(1, "k" + std::to_string(i));
    if (!r || !r->found || r->value != "v" + std::to_string(i))
      ++missing;
  }
  BOOST_TEST(missing == 0);
}

BOOST_AUTO_TEST_CASE(group_commit_keeps_acknowledged_state_too) {
  form(1, {"--durability", "group"});
  // A gate: the writers connect while the node is stopped (the kernel queues their
  // connections and requests), so their puts reach the state store together once it runs
  // again, and commits can share an fsync'd write.
  constexpr int writers = 20;
  node(1).signal(SIGSTOP);
  std::vector<std::future<std::string>> puts;
  for (int i = 0; i < writers; ++i)
    puts.push_back(std::async(std::launch::async, [this, i] {
      auto r = put(1, "g" + std::to_string(i), "x" + std::to_string(i));
      return !r ? test::why(r) : r->error;
    }));
  // Most of them is enough for the gate (a connection or two may still be on its way; every
  // put must succeed all the same, checked below).
  bool queued = eventually([&] { return established_to(node(1).port().rpc) >= writers - 2; });
  BOOST_TEST_MESSAGE("writers queued at the stopped node: " << established_to(node(1).port().rpc));
  node(1).signal(SIGCONT);
  BOOST_REQUIRE_MESSAGE(queued, "phase: " << writers << " writers connecting to the stopped node");
  for (auto& p : puts) {
    auto err = p.get();
    BOOST_REQUIRE_MESSAGE(err.empty(), "phase: concurrent puts: " << err);
  }
  auto writes = stat(1, "", "state_writes_total");
  auto commits = stat(1, "", "state_commits_total");
  BOOST_TEST(writes >= writers);
  BOOST_TEST(commits < writes, "no write was grouped: " << commits << " commits for " << writes
                                                        << " writes");
  node(1).signal(SIGKILL);
  node(1).wait();
  node(1).start({"--durability", "group"});
  BOOST_REQUIRE(eventually([&] { return test::http_get(node(1).port().http, "/health") == 200; }));
  for (int i = 0; i < writers; ++i) {
    auto r = get(1, "g" + std::to_string(i));
    BOOST_REQUIRE_MESSAGE(r, test::why(r));
    BOOST_TEST(r->found, "g" << i);
    BOOST_TEST(r->value == "x" + std::to_string(i), "g" << i);
  }
}

BOOST_AUTO_TEST_CASE(sigterm_leaves_the_cluster_cleanly) {
  form(3);
  node(2).signal(SIGTERM);
  BOOST_TEST(node(2).wait() == 0, node(2).log_tail());
  BOOST_REQUIRE_MESSAGE(eventually([&] { return status(1, "n2") == "left" && status(3, "n2") == "left"; }),
                        "phase: graceful leave of n2; n1 sees " << status(1, "n2") << "\n" << logs());
  auto log = node(2).log();
  BOOST_TEST(log.find("leaving the cluster") != std::string::npos);
  BOOST_TEST(log.find("node n2 stopped") != std::string::npos);
  BOOST_TEST(log.find("killing it") == std::string::npos); // every child stopped in time
}

BOOST_AUTO_TEST_CASE(garbage_on_every_port_leaves_the_node_serving) {
  form(2);
  std::mt19937 rng{7};
  std::string junk(4096, '\0');
  for (auto& c : junk)
    c = static_cast<char>(rng());
  auto& n = node(1);
  for (int round = 0; round < 3; ++round) {
    BOOST_TEST(test::send_raw(n.port().rpc, junk));
    BOOST_TEST(test::send_raw(n.port().cluster, junk));
    BOOST_TEST(test::send_raw(n.port().http, junk));
    BOOST_TEST(test::send_raw(n.port().rpc, std::string("\x00\x00\x00\x00\xff\xff\xff\x7f", 8)));
  }
  BOOST_TEST(test::http_get(n.port().http, "/health") == 200, n.log_tail());
  BOOST_TEST(all_alive_everywhere(), logs());
  auto r = ask(1, admin_request{admin_command::tree, "n2", "", "", ""});
  BOOST_REQUIRE(r);
  BOOST_TEST(r->error.empty());
}

BOOST_AUTO_TEST_CASE(bad_http_gets_a_json_error_and_the_node_keeps_serving) {
  form(1);
  auto port = node(1).port().http;
  std::string body;
  BOOST_TEST(test::http_request(port, "POST", "/v1/nothing", "{}", &body) == 404, body);
  BOOST_TEST(body.find("\"error_code\":\"NOT_FOUND\"") != std::string::npos, body);
  BOOST_TEST(test::http_request(port, "POST", "/metrics", "{}", &body) == 405, body);
  BOOST_TEST(body.find("\"error_code\":\"INVALID_ARGUMENT\"") != std::string::npos, body);
  // Each answer ends with the JSON body's "}\n"; then the node closes the connection.
  auto exchange = [&](const std::string& request, bool end_sending) {
    test::tcp_client c{port};
    BOOST_REQUIRE(c.connected());
    c.send(request);
    if (end_sending)
      c.shutdown_write();
    auto got = c.read_until("}\n");
    c.read_until("(only the close)");
    BOOST_TEST(c.closed(), "the connection stayed open after: " << got);
    return got;
  };
  auto got = exchange("hello there\r\n", false);
  BOOST_TEST(got.rfind("HTTP/1.1 400 ", 0) == 0, got);
  BOOST_TEST(got.find("not an HTTP request") != std::string::npos, got);
  got = exchange("POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", false);
  BOOST_TEST(got.rfind("HTTP/1.1 400 ", 0) == 0, got);
  BOOST_TEST(got.find("Content-Length is not a number of bytes") != std::string::npos, got);
  got = exchange("POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}", true);
  BOOST_TEST(got.rfind("HTTP/1.1 400 ", 0) == 0, got);
  BOOST_TEST(got.find("the request body ended early") != std::string::npos, got);
  std::string big(2u << 20, 'x');
  got = exchange("POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Length: "
                   + std::to_string(big.size()) + "\r\n\r\n" + big,
                 false);
  BOOST_TEST(got.rfind("HTTP/1.1 413 ", 0) == 0, got);
  BOOST_TEST(got.find("request body over 1048576 bytes") != std::string::npos, got);
  BOOST_TEST(test::http_get(port, "/health") == 200);
}

BOOST_AUTO_TEST_CASE(a_malformed_envelope_gets_an_error_reply_and_is_counted) {
  form(1);
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  runtime::add_types(cfg);
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  auto peer = sys.middleman().remote_actor("127.0.0.1", node(1).port().cluster);
  BOOST_REQUIRE_MESSAGE(peer, "phase: connecting to the cluster port: " << test::why(peer));
  auto good = protocols::encode(protocols::envelope{1, "tester", protocols::heartbeat{1}});
  std::vector<std::string> bad = {"", "garbage!", good.substr(0, good.size() - 8),
                                  std::string(64, '\xff')};
  caf::scoped_actor self{sys};
  for (auto& bytes : bad) {
    bool got_error = false;
    self->request(*peer, 10s, runtime::wire_atom::value, bytes)
      .receive([&](const std::string&) {},
               [&](caf::error& err) {
                 got_error = err.category() == protocols::codec_errc_category;
               });
    BOOST_TEST(got_error, "payload of " << bytes.size() << " bytes was not rejected");
  }
  BOOST_TEST(stat(1, "", "decode_errors_total") == static_cast<double>(bad.size()));
  BOOST_TEST(test::http_get(node(1).port().http, "/health") == 200);
  BOOST_TEST(node(1).log().find("rejected a malformed envelope") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_console_explains_mistakes) {
  form(1);
  int rc = -1;
  auto out = console(node(1).port().rpc, "frobnicate", &rc);
  BOOST_TEST(rc == 2);
  BOOST_TEST(out.find("unknown command \"frobnicate\"") != std::string::npos, out);
  out = console(node(1).port().rpc, "kill n1", &rc);
  BOOST_TEST(rc == 2);
  BOOST_TEST(out.find("usage: kill NODE PATH") != std::string::npos, out);
  out = console(node(1).port().rpc, "tree nosuchnode", &rc);
  BOOST_TEST(rc == 1);
  BOOST_TEST(out.find("unknown_node") != std::string::npos, out);
  out = console(node(1).port().rpc, "kill n1 services/nothing", &rc);
  BOOST_TEST(rc == 1);
  BOOST_TEST(out.find("not_found") != std::string::npos, out);
  out = console(test::free_port(), "nodes", &rc);
  BOOST_TEST(rc == 1);
  BOOST_TEST(out.find("unreachable: cannot reach 127.0.0.1:") != std::string::npos, out);
  out = console(node(1).port().rpc, "help", &rc);
  BOOST_TEST(rc == 0);
  for (auto cmd : {"nodes", "tree", "actors", "stats", "kill", "get", "put"})
    BOOST_TEST(out.find(cmd) != std::string::npos, cmd);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(node_startup)

BOOST_AUTO_TEST_CASE(bad_config_is_one_clear_line_and_exit_2) {
  test::temp_dir dir;
  auto path = dir.str() + "/bad.toml";
  {
    std::ofstream f{path};
    f << "[cluster]\nheartbeat_ms = \"fast\"\n";
  }
  std::string out;
  auto rc = test::run_command({WHARF_NODE_BIN, "--config", path}, &out);
  BOOST_TEST(rc == 2);
  BOOST_TEST(out == "wharf-node: bad_config: " + path + ": cluster.heartbeat_ms: expected an integer\n");
  rc = test::run_command({WHARF_NODE_BIN, "--cluster-port", "70000"}, &out);
  BOOST_TEST(rc == 2);
  BOOST_TEST(out.find("--cluster-port") != std::string::npos, out);
  rc = test::run_command({WHARF_NODE_BIN, "--config", dir.str() + "/missing.toml"}, &out);
  BOOST_TEST(rc == 2);
  BOOST_TEST(out.find("cannot open config file") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(a_port_in_use_fails_fast_with_exit_1) {
  test::temp_dir dir;
  node_process first{"a", dir.str(), dir.str(), 0};
  first.start();
  BOOST_REQUIRE(eventually([&] { return test::http_get(first.port().http, "/health") == 200; }));
  std::string out;
  auto rc = test::run_command({WHARF_NODE_BIN, "--name", "b", "--data-dir", dir.str(),
                               "--cluster-port", std::to_string(test::free_port()), "--rpc-port",
                               std::to_string(first.port().rpc), "--http-port", "0"},
                              &out);
  BOOST_TEST(rc == 1);
  BOOST_TEST(out.find("cannot serve RPC/HTTP") != std::string::npos, out);
}

BOOST_AUTO_TEST_SUITE_END()
