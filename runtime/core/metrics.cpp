#include "runtime/core/metrics.hpp"

#include <sstream>

namespace wharf::runtime {

namespace {

// Label values must escape backslash, quote and newline.
std::string label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

} // namespace

void node_metrics::mailboxes(std::map<std::string, uint64_t> sizes) {
  std::lock_guard<std::mutex> guard{mtx_};
  mailboxes_ = std::move(sizes);
}

std::vector<protocols::stat> node_metrics::builtin() const {
  auto d = [](const std::atomic<uint64_t>& x) { return static_cast<double>(x.load()); };
  return {
    {"messages_in_total", d(messages_in)},   {"messages_out_total", d(messages_out)},
    {"bytes_in_total", d(bytes_in)},         {"bytes_out_total", d(bytes_out)},
    {"decode_errors_total", d(decode_errors)}, {"restarts_total", d(restarts)},
    {"escalations_total", d(escalations)},   {"members_alive", d(members_alive)},
    {"members_down", d(members_down)},       {"admin_requests_total", d(admin_requests)},
    {"peer_down_failures_total", d(peer_down_failures)},
    {"state_commits_total", d(state_commits)}, {"state_writes_total", d(state_writes)},
  };
}

std::vector<protocols::stat> node_metrics::snapshot() const {
  auto out = builtin();
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [name, fam] : families_)
    for (auto& [labels, m] : fam.series)
      out.push_back({name + labels, static_cast<double>(m->value())});
  return out;
}

metric& node_metrics::get(std::string_view name, metric_kind kind, std::string_view help,
                          const metric_labels& labels) {
  std::string rendered;
  for (auto& [k, v] : labels)
    rendered += (rendered.empty() ? "{" : ",") + k + "=\"" + label(v) + "\"";
  if (!rendered.empty())
    rendered += "}";
  std::lock_guard<std::mutex> guard{mtx_};
  auto& fam = families_[std::string(name)];
  if (fam.series.empty()) {
    fam.kind = kind;
    fam.help = std::string(help);
  }
  auto& m = fam.series[rendered];
  if (!m)
    m = std::make_unique<metric>();
  return *m;
}

std::string node_metrics::prometheus(const std::string& node_name) const {
  std::ostringstream os;
  auto node = label(node_name);
  for (auto& s : builtin()) {
    bool counter = s.name.size() > 6 && s.name.compare(s.name.size() - 6, 6, "_total") == 0;
    os << "# TYPE wharf_" << s.name << (counter ? " counter\n" : " gauge\n");
    os << "wharf_" << s.name << "{node=\"" << node << "\"} " << static_cast<uint64_t>(s.value)
       << '\n';
  }
  os << "# TYPE wharf_mailbox_size gauge\n";
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [path, size] : mailboxes_)
    os << "wharf_mailbox_size{node=\"" << node << "\",path=\"" << label(path) << "\"} " << size
       << '\n';
  for (auto& [name, fam] : families_) {
    os << "# HELP wharf_" << name << ' ' << fam.help << '\n';
    os << "# TYPE wharf_" << name << (fam.kind == metric_kind::counter ? " counter\n" : " gauge\n");
    for (auto& [labels, m] : fam.series) {
      os << "wharf_" << name << "{node=\"" << node << '"';
      if (!labels.empty())
        os << ',' << labels.substr(1, labels.size() - 2);
      os << "} " << m->value() << '\n';
    }
  }
  return os.str();
}

} // namespace wharf::runtime
