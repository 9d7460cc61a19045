#include "runtime/core/logging.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace wharf::runtime {

namespace {

thread_local const std::string* current_actor = nullptr;
thread_local uint64_t current_trace = 0;

void escape(spdlog::memory_buf_t& out, std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append(std::string_view("\\n"));
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", u);
      out.append(std::string_view(buf));
    } else {
      out.push_back(c);
    }
  }
}

// One JSON object per line; spdlog's pattern flags would not escape the message.
class json_formatter final : public spdlog::formatter {
public:
  explicit json_formatter(std::string node) : node_(std::move(node)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto t = std::chrono::system_clock::to_time_t(msg.time);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch())
                .count()
              % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[96];
    std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    auto lvl = spdlog::level::to_string_view(msg.level);
    dest.append(std::string_view("{\"ts\":\""));
    dest.append(std::string_view(ts));
    dest.append(std::string_view("\",\"level\":\""));
    dest.append(std::string_view(lvl.data(), lvl.size()));
    dest.append(std::string_view("\",\"node\":\""));
    escape(dest, node_);
    dest.append(std::string_view("\",\"actor\":\""));
    if (current_actor)
      escape(dest, *current_actor);
    dest.append(std::string_view("\",\"trace\":\""));
    if (current_trace) {
      char buf[24];
      std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(current_trace));
      dest.append(std::string_view(buf));
    }
    dest.append(std::string_view("\",\"msg\":\""));
    escape(dest, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(std::string_view("\"}\n"));
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>(node_);
  }

private:
  std::string node_;
};

} // namespace

void setup_logging(const std::string& node_name, const std::string& level,
                   const std::string& format) {
  auto logger = spdlog::stderr_logger_mt("wharf:" + node_name);
  if (format == "json")
    logger->set_formatter(std::make_unique<json_formatter>(node_name));
  else
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l node=" + node_name + " %v",
                        spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

log_context::log_context(const std::string& actor, uint64_t trace) noexcept
  : prev_actor_(current_actor), prev_trace_(current_trace) {
  current_actor = &actor;
  current_trace = trace;
}

void log_context::set_for_thread(std::string actor, uint64_t trace) {
  thread_local std::string owned;
  owned = std::move(actor);
  current_actor = &owned;
  current_trace = trace;
}

log_context::~log_context() {
  current_actor = prev_actor_;
  current_trace = prev_trace_;
}

} // namespace wharf::runtime
