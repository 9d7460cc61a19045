#define BOOST_TEST_MODULE runtime_tests
#include <boost/test/unit_test.hpp>

#include <spdlog/spdlog.h>

// Supervisors log every restart; keep test output to failures.
struct quiet_logs {
  quiet_logs() { spdlog::set_level(spdlog::level::off); }
};
BOOST_TEST_GLOBAL_FIXTURE(quiet_logs);
