// The superlink's HTTP routes read from any path and query without throwing.
#include <boost/test/unit_test.hpp>

#include "actors/http_route.hpp"

using namespace stamen;

BOOST_AUTO_TEST_SUITE(http_route_suite)

BOOST_AUTO_TEST_CASE(numbers_past_64_bits_and_garbage_are_reasons_not_exceptions) {
  std::multimap<std::string, std::string> none;
  auto run = route_http("/api/runs/18446744073709551615", none);
  BOOST_REQUIRE(run);
  BOOST_TEST(run->run_id == 18446744073709551615ull);
  for (auto* bad : {"/api/runs/18446744073709551616", "/api/runs/99999999999999999999", "/api/runs/",
                    "/api/runs/-1", "/api/runs/ 1", "/api/runs/1e9", "/api/runs/0x10"}) {
    auto r = route_http(bad, none);
    BOOST_TEST(!r, bad);
    if (!r) BOOST_TEST(r.error().code == errc::invalid_argument);
  }
  BOOST_TEST((route_http("/api/nodes?offset=99999999999999999999", none)->what == http_route::kind::not_found));
  auto page = route_http("/api/nodes", {{"offset", "7"}, {"limit", "99999"}});
  BOOST_REQUIRE(page);
  BOOST_TEST(page->offset == 7u);
  BOOST_TEST(page->limit == max_nodes_page);
  BOOST_TEST(!route_http("/api/nodes", {{"limit", "1"}, {"limit", "2"}}));
  BOOST_TEST(!route_http("/api/nodes", {{"offset", "99999999999999999999"}}));
  BOOST_TEST((route_http("/nope", none)->what == http_route::kind::not_found));
}

BOOST_AUTO_TEST_SUITE_END()
