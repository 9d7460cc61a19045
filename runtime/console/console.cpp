#include "runtime/console/console.hpp"

#include <iomanip>
#include <sstream>

#include "runtime/core/types.hpp"
#include "runtime/rpc/admin_client.hpp"

namespace wharf::runtime {

using protocols::admin_command;
using protocols::admin_reply;
using protocols::admin_request;

namespace {

struct command_info {
  const char* name;
  const char* usage;
  const char* help;
};

const command_info commands[] = {
  {"help", "help", "show this text"},
  {"nodes", "nodes", "the member table: name, address, roles, status, incarnation"},
  {"tree", "tree [NODE]", "the supervision tree with restart counts"},
  {"actors", "actors [NODE]", "managed actors with status, restarts and mailbox size"},
  {"stats", "stats [NODE]", "node counters: messages, restarts, members, state writes"},
  {"kill", "kill NODE PATH", "crash the actor at PATH (fault injection); see `tree`"},
  {"get", "get NODE KEY", "read KEY from the node's durable register"},
  {"put", "put NODE KEY VALUE", "write KEY = VALUE to the node's durable register"},
  {"quit", "quit", "leave the console (also: exit, Ctrl-D)"},
};

std::vector<std::string> split(const std::string& line, size_t max_parts) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && isspace(static_cast<unsigned char>(line[i])))
      ++i;
    if (i >= line.size())
      break;
    if (out.size() + 1 == max_parts) {
      auto end = line.find_last_not_of(" \t\r\n");
      out.push_back(line.substr(i, end + 1 - i));
      break;
    }
    auto j = i;
    while (j < line.size() && !isspace(static_cast<unsigned char>(line[j])))
      ++j;
    out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string render_members(const admin_reply& r) {
  std::ostringstream os;
  os << std::left << std::setw(12) << "NAME" << std::setw(22) << "CLUSTER" << std::setw(8)
     << "RPC" << std::setw(8) << "HTTP" << std::setw(18) << "ROLES" << std::setw(8) << "STATUS"
     << "INCARNATION\n";
  for (auto& m : r.members) {
    std::string roles;
    for (auto& x : m.roles)
      roles += (roles.empty() ? "" : ",") + x;
    os << std::left << std::setw(12) << m.name << std::setw(22)
       << (m.host + ":" + std::to_string(m.cluster_port)) << std::setw(8) << m.rpc_port
       << std::setw(8) << m.http_port << std::setw(18) << (roles.empty() ? "-" : roles)
       << std::setw(8) << to_string(m.status) << m.incarnation << '\n';
  }
  return os.str();
}

std::string render_tree(const admin_reply& r) {
  std::ostringstream os;
  os << "node " << r.node << '\n';
  for (auto& e : r.actors) {
    auto name = e.path;
    if (e.depth > 0) {
      auto slash = name.rfind('/');
      if (slash != std::string::npos)
        name = name.substr(slash + 1);
    }
    os << std::string(2u * e.depth, ' ') << name << "  [" << e.kind;
    if (!e.strategy.empty())
      os << ' ' << e.strategy;
    if (!e.restart_type.empty())
      os << ", " << e.restart_type;
    os << "] " << e.status << " restarts=" << e.restarts;
    if (e.actor_id)
      os << " actor=" << e.actor_id;
    os << '\n';
  }
  return os.str();
}

std::string render_actors(const admin_reply& r) {
  std::ostringstream os;
  os << std::left << std::setw(32) << "PATH" << std::setw(12) << "KIND" << std::setw(14)
     << "STATUS" << std::setw(10) << "RESTARTS" << std::setw(9) << "MAILBOX" << "ACTOR\n";
  for (auto& e : r.actors)
    os << std::left << std::setw(32) << e.path << std::setw(12) << e.kind << std::setw(14)
       << e.status << std::setw(10) << e.restarts << std::setw(9) << e.mailbox_size
       << e.actor_id << '\n';
  return os.str();
}

std::string render_stats(const admin_reply& r) {
  std::ostringstream os;
  os << "node " << r.node << '\n';
  for (auto& s : r.stats) {
    os << std::left << std::setw(28) << s.name;
    if (s.value == static_cast<double>(static_cast<uint64_t>(s.value)))
      os << static_cast<uint64_t>(s.value);
    else
      os << s.value;
    os << '\n';
  }
  return os.str();
}

console_result usage_error(const std::string& msg) {
  console_result res;
  res.exit_code = 2;
  res.error = msg + "\n";
  return res;
}

} // namespace

const std::vector<std::string>& console_commands() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> xs;
    for (auto& c : commands)
      xs.emplace_back(c.name);
    xs.emplace_back("exit");
    return xs;
  }();
  return names;
}

std::string console_help() {
  std::ostringstream os;
  os << "Commands (NODE defaults to the node you are connected to):\n";
  for (auto& c : commands)
    os << "  " << std::left << std::setw(22) << c.usage << c.help << '\n';
  return os.str();
}

console_result run_console_command(admin_client& client, const std::string& line) {
  auto words = split(line, 4);
  console_result res;
  if (words.empty())
    return res;
  auto& cmd = words[0];
  if (cmd == "help" || cmd == "?") {
    res.output = console_help();
    return res;
  }
  if (cmd == "quit" || cmd == "exit") {
    res.quit = true;
    return res;
  }
  admin_request req;
  if (cmd == "nodes") {
    if (words.size() > 2)
      return usage_error("usage: nodes");
    req.command = admin_command::members;
    if (words.size() == 2)
      req.node = words[1];
  } else if (cmd == "tree" || cmd == "actors" || cmd == "stats") {
    if (words.size() > 2)
      return usage_error("usage: " + cmd + " [NODE]");
    req.command = cmd == "tree"     ? admin_command::tree
                  : cmd == "actors" ? admin_command::actors
                                    : admin_command::stats;
    if (words.size() == 2)
      req.node = words[1];
  } else if (cmd == "kill") {
    if (words.size() != 3)
      return usage_error("usage: kill NODE PATH   (paths as shown by `tree`, e.g. services/register)");
    req.command = admin_command::kill;
    req.node = words[1];
    req.path = words[2];
  } else if (cmd == "get") {
    if (words.size() != 3)
      return usage_error("usage: get NODE KEY");
    req.command = admin_command::get;
    req.node = words[1];
    req.key = words[2];
  } else if (cmd == "put") {
    if (words.size() != 4)
      return usage_error("usage: put NODE KEY VALUE");
    req.command = admin_command::put;
    req.node = words[1];
    req.key = words[2];
    req.value = words[3];
  } else {
    return usage_error("unknown command \"" + cmd + "\"; type `help` for the list");
  }
  auto reply = client.call(req);
  if (!reply) {
    res.exit_code = 1;
    res.error = "error: " + describe(reply.error()) + "\n";
    return res;
  }
  if (!reply->error.empty()) {
    res.exit_code = 1;
    res.error = "error (" + reply->error_code + "): " + reply->error + "\n";
    return res;
  }
  switch (req.command) {
    case admin_command::members: res.output = render_members(*reply); break;
    case admin_command::tree: res.output = render_tree(*reply); break;
    case admin_command::actors: res.output = render_actors(*reply); break;
    case admin_command::stats: res.output = render_stats(*reply); break;
    case admin_command::kill:
      res.output = "crashed " + req.path + " on " + reply->node
                   + "; its supervisor restarts it per its policy (see `tree`)\n";
      break;
    case admin_command::get:
      if (!reply->found) {
        res.exit_code = 1;
        res.error = "error (not_found): no key \"" + req.key + "\" on " + reply->node + "\n";
      } else {
        res.output = reply->value + "\n";
      }
      break;
    case admin_command::put: res.output = "ok\n"; break;
  }
  return res;
}

} // namespace wharf::runtime
