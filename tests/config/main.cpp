#define BOOST_TEST_MODULE stamen_config
#include <boost/test/unit_test.hpp>
