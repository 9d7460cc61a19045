#define BOOST_TEST_MODULE analytics_tests
#include <boost/test/unit_test.hpp>
