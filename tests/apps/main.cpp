#define BOOST_TEST_MODULE stamen_apps
#include <boost/test/unit_test.hpp>
