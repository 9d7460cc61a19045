#define BOOST_TEST_MODULE system_tests
#include <boost/test/unit_test.hpp>
