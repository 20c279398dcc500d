#define BOOST_TEST_MODULE stamen_runtime
#include <boost/test/unit_test.hpp>
