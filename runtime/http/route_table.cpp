#include "runtime/http/route_table.hpp"

#include <algorithm>
#include <optional>
#include <cstdio>
#include <set>

namespace wharf::runtime {

namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < path.size()) {
    if (path[at] == '/') {
      ++at;
      continue;
    }
    auto end = path.find('/', at);
    if (end == std::string_view::npos)
      end = path.size();
    out.emplace_back(path.substr(at, end - at));
    at = end;
  }
  return out;
}

} // namespace

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// The first "key[=value]" of `query` named `key`.
std::optional<std::string_view> query_pair(std::string_view query, std::string_view key) {
  size_t at = 0;
  while (at <= query.size()) {
    auto amp = query.find('&', at);
    if (amp == std::string_view::npos)
      amp = query.size();
    auto kv = query.substr(at, amp - at);
    if (kv.substr(0, kv.find('=')) == key)
      return kv;
    at = amp + 1;
  }
  return std::nullopt;
}

} // namespace

std::string http_request::query_value(std::string_view key) const {
  auto kv = query_pair(query, key);
  if (!kv || kv->find('=') == std::string_view::npos)
    return {};
  return std::string(kv->substr(kv->find('=') + 1));
}

bool http_request::has_query(std::string_view key) const {
  return query_pair(query, key).has_value();
}

http_response http_response::json(unsigned status, std::string json_text) {
  http_response r;
  r.status = status;
  r.body = std::move(json_text);
  r.body += '\n';
  return r;
}

http_response http_response::error(unsigned status, std::string_view code,
                                   std::string_view message) {
  return json(status, "{\"error_code\":\"" + json_escape(code) + "\",\"error_message\":\""
                        + json_escape(message) + "\"}");
}

const char* http_response::reason(unsigned status) noexcept {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

void route_table::add(std::string method, std::string pattern, http_handler handler) {
  route r{std::move(method), std::move(pattern), {}, std::move(handler)};
  r.segments = split_path(r.pattern);
  for (auto& x : routes_)
    if (x.method == r.method && x.pattern == r.pattern) {
      x = std::move(r);
      return;
    }
  routes_.push_back(std::move(r));
}

bool route_table::matches(const route& r, const std::vector<std::string>& segs,
                          std::vector<std::string>* params) {
  if (r.segments.size() != segs.size())
    return false;
  std::vector<std::string> got;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (r.segments[i] == "{}")
      got.push_back(segs[i]);
    else if (r.segments[i] != segs[i])
      return false;
  }
  if (params)
    *params = std::move(got);
  return true;
}

route_table::match route_table::find(http_request& req) const {
  auto segs = split_path(req.path);
  auto method = req.method == "HEAD" ? std::string("GET") : req.method;
  std::set<std::string> allowed;
  for (auto& r : routes_) {
    if (!matches(r, segs, nullptr))
      continue;
    if (r.method == method) {
      match m;
      matches(r, segs, &req.params);
      m.handler = &r.handler;
      return m;
    }
    allowed.insert(r.method);
  }
  match m;
  if (allowed.empty()) {
    std::string known;
    for (auto& p : paths())
      known += (known.empty() ? "" : ", ") + p;
    m.error = http_response::error(404, "NOT_FOUND", "unknown path " + req.path.substr(0, 256)
                                                       + "; known paths: " + known);
    return m;
  }
  std::string allow;
  for (auto& a : allowed)
    allow += (allow.empty() ? "" : ", ") + a;
  if (allowed.count("GET"))
    allow += ", HEAD";
  m.error = http_response::error(405, "INVALID_ARGUMENT",
                                 req.method + " is not allowed on " + req.path.substr(0, 256)
                                   + "; use " + allow);
  m.error.headers.emplace_back("Allow", allow);
  return m;
}

std::vector<std::string> route_table::paths() const {
  std::vector<std::string> out;
  for (auto& r : routes_)
    if (std::find(out.begin(), out.end(), r.pattern) == out.end())
      out.push_back(r.pattern);
  return out;
}

} // namespace wharf::runtime
