#define BOOST_TEST_MODULE protocols_tests
#include <boost/test/unit_test.hpp>
