#define BOOST_TEST_MODULE stamen_messages
#include <boost/test/unit_test.hpp>
