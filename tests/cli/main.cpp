#define BOOST_TEST_MODULE stamen_cli
#include <boost/test/unit_test.hpp>
