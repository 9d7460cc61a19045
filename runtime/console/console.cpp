#include "runtime/console/console.hpp"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "protocols/error_code.hpp"
#include "runtime/core/types.hpp"
#include "runtime/module/service_module.hpp"
#include "runtime/rpc/admin_client.hpp"
#include "runtime/rpc/rpc_client.hpp"

namespace wharf::runtime {

using protocols::admin_command;
using protocols::admin_reply;
using protocols::admin_request;

namespace {

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

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
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
    os << std::left << std::setw(28) << s.name << ' ';
    if (s.value == static_cast<double>(static_cast<uint64_t>(s.value)))
      os << static_cast<uint64_t>(s.value);
    else
      os << s.value;
    os << '\n';
  }
  return os.str();
}

// Runs an operator command through `Admin` and renders a successful reply with `render`.
console_result admin(rpc_client& client, admin_request req,
                     const std::function<std::string(const admin_reply&)>& render) {
  auto reply = call_admin(client, req);
  if (!reply)
    return console_result::failure("", describe(reply.error()));
  if (!reply->error.empty())
    return console_result::failure(reply->error_code, reply->error);
  console_result res;
  res.output = render(*reply);
  return res;
}

console_result node_command(rpc_client& client, admin_command cmd,
                            const std::vector<std::string>& args,
                            std::string (*render)(const admin_reply&)) {
  admin_request req;
  req.command = cmd;
  if (!args.empty())
    req.node = args[0];
  return admin(client, std::move(req), render);
}

std::vector<console_command> node_commands() {
  std::vector<console_command> out;
  out.push_back({"help", "help", "show this text", 0, 0, nullptr});
  out.push_back({"nodes", "nodes", "the member table: name, address, roles, status, incarnation",
                 0, 1, [](rpc_client& c, const std::vector<std::string>& a) {
                   return node_command(c, admin_command::members, a, render_members);
                 }});
  out.push_back({"tree", "tree [NODE]", "the supervision tree with restart counts", 0, 1,
                 [](rpc_client& c, const std::vector<std::string>& a) {
                   return node_command(c, admin_command::tree, a, render_tree);
                 }});
  out.push_back({"actors", "actors [NODE]", "managed actors with status, restarts and mailbox size",
                 0, 1, [](rpc_client& c, const std::vector<std::string>& a) {
                   return node_command(c, admin_command::actors, a, render_actors);
                 }});
  out.push_back({"stats", "stats [NODE]",
                 "node counters: messages, restarts, members, state writes, module metrics", 0, 1,
                 [](rpc_client& c, const std::vector<std::string>& a) {
                   return node_command(c, admin_command::stats, a, render_stats);
                 }});
  out.push_back({"kill", "kill NODE PATH",
                 "crash the actor at PATH (fault injection); see `tree`", 2, 2,
                 [](rpc_client& c, const std::vector<std::string>& a) {
                   admin_request req;
                   req.command = admin_command::kill;
                   req.node = a[0];
                   req.path = a[1];
                   auto path = a[1];
                   return admin(c, std::move(req), [path](const admin_reply& r) {
                     return "crashed " + path + " on " + r.node
                            + "; its supervisor restarts it per its policy (see `tree`)\n";
                   });
                 }});
  return out;
}

// Argument names of a usage line: "kill NODE PATH" -> {NODE, PATH}; "[NODE]" -> NODE.
std::vector<std::string> arg_names(const std::string& usage) {
  auto words = split(usage, 0);
  std::vector<std::string> out;
  for (size_t i = 1; i < words.size(); ++i) {
    auto w = words[i];
    w.erase(std::remove_if(w.begin(), w.end(), [](char c) { return c == '[' || c == ']'; }),
            w.end());
    out.push_back(w);
  }
  return out;
}

} // namespace

console_result console_result::failure(const std::string& code, const std::string& message) {
  console_result res;
  res.exit_code = 1;
  res.error = code.empty() ? "error: " + message + "\n"
                           : "error (" + lower(code) + "): " + message + "\n";
  return res;
}

console::console(rpc_client& client, const module_list& modules)
  : commands_(node_commands()), client_(client) {
  for (auto* m : modules)
    for (auto& c : m->console_commands())
      commands_.push_back(std::move(c));
  commands_.push_back({"quit", "quit", "leave the console (also: exit, Ctrl-D)", 0, 0, nullptr});
}

const console_command* console::find(const std::string& name) const {
  for (auto& c : commands_)
    if (c.name == name)
      return &c;
  return nullptr;
}

std::vector<std::string> console::command_names() const {
  std::vector<std::string> out;
  for (auto& c : commands_)
    out.push_back(c.name);
  out.emplace_back("exit");
  return out;
}

std::string console::help() const {
  std::ostringstream os;
  os << "Commands (NODE defaults to the node you are connected to):\n";
  for (auto& c : commands_)
    os << "  " << std::left << std::setw(24) << c.usage << c.help << '\n';
  return os.str();
}

std::string console_help(const module_list& modules) {
  rpc_client none{"127.0.0.1", 1};
  return console{none, modules}.help();
}

console_result console::run(const std::string& line) {
  auto first = split(line, 2);
  console_result res;
  if (first.empty())
    return res;
  auto cmd = first[0];
  if (cmd == "help" || cmd == "?") {
    res.output = help();
    return res;
  }
  if (cmd == "quit" || cmd == "exit") {
    res.quit = true;
    return res;
  }
  auto* c = find(cmd);
  if (!c || !c->run) {
    res.exit_code = 2;
    res.error = "unknown command \"" + cmd + "\"; type `help` for the list\n";
    return res;
  }
  auto words = split(line, c->max_args + 1);
  std::vector<std::string> args(words.begin() + 1, words.end());
  if (args.size() < c->min_args || args.size() > c->max_args) {
    res.exit_code = 2;
    res.error = "usage: " + c->usage;
    if (cmd == "kill")
      res.error += "   (paths as shown by `tree`)";
    res.error += "\n";
    return res;
  }
  return c->run(client_, args);
}

std::vector<std::string> console::complete(const std::string& line) {
  auto words = split(line, 0);
  bool fresh = line.empty() || isspace(static_cast<unsigned char>(line.back()));
  auto prefix = fresh || words.empty() ? std::string{} : words.back();
  auto index = words.size() - (fresh || words.empty() ? 0 : 1);
  std::vector<std::string> candidates;
  if (index == 0) {
    candidates = command_names();
  } else if (auto* c = find(words[0])) {
    auto names = arg_names(c->usage);
    if (index - 1 < names.size() && names[index - 1] == "NODE") {
      if (members_.empty()) {
        auto r = call_admin(client_, admin_request{});
        if (r)
          for (auto& m : r->members)
            members_.push_back(m.name);
      }
      candidates = members_;
    }
  }
  std::vector<std::string> out;
  for (auto& x : candidates)
    if (x.compare(0, prefix.size(), prefix) == 0)
      out.push_back(x);
  return out;
}

} // namespace wharf::runtime
