#define BOOST_TEST_MODULE stamen_actors
#include <boost/test/unit_test.hpp>
