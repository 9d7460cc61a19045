#include "runtime/core/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace wharf::runtime {

void setup_logging(const std::string& node_name, const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("wharf:" + node_name);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l node=" + node_name + " %v",
                      spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

} // namespace wharf::runtime
