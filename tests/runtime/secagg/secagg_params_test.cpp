#include "runtime/secagg/secagg_params.hpp"

#include <boost/test/unit_test.hpp>

using namespace stamen;
using namespace stamen::secagg;

BOOST_AUTO_TEST_SUITE(secagg_params)

BOOST_AUTO_TEST_CASE(the_round_parameters_follow_flowers_setup_stage) {
  secagg_plus_options o;  // num-shares 3, threshold 2
  auto p = resolve(o, 10);
  BOOST_REQUIRE(p);
  BOOST_TEST(p->num_shares == 3);
  BOOST_TEST(p->threshold == 2);
  o.num_shares = {0.2, true};
  o.reconstruction_threshold = {0.4, true};
  p = resolve(o, 100);  // round(20) is even: 21; round(0.4 * 21) = 8
  BOOST_REQUIRE(p);
  BOOST_TEST(p->num_shares == 21);
  BOOST_TEST(p->threshold == 8);
  p = resolve(o, 5);  // round(1) <= 2: all 5; max(round(2), 2)
  BOOST_REQUIRE(p);
  BOOST_TEST(p->num_shares == 5);
  BOOST_TEST(p->threshold == 2);
  BOOST_TEST(!resolve(o, 1).has_value());
}

BOOST_AUTO_TEST_CASE(values_outside_their_domain_are_refused_by_name) {
  auto bad = [](auto change, const char* key) {
    secagg_plus_options o;
    change(o);
    auto v = validate(o);
    BOOST_TEST(!v, key);
    if (!v) BOOST_TEST(v.error().what.find(key) != std::string::npos, v.error().what);
  };
  bad([](auto& o) { o.num_shares = {2, false}; }, "num-shares");
  bad([](auto& o) { o.num_shares = {1.5, true}; }, "num-shares");
  bad([](auto& o) { o.reconstruction_threshold = {3, false}; }, "reconstruction-threshold");
  bad([](auto& o) { o.reconstruction_threshold = {0, true}; }, "reconstruction-threshold");
  bad([](auto& o) { o.max_weight = 0; }, "max-weight");
  bad([](auto& o) { o.clipping_range = -1; }, "clipping-range");
  bad([](auto& o) { o.modulus_range = 3u << 22; }, "power of 2");
  bad([](auto& o) { o.modulus_range = o.quantization_range; }, "modulus-range");
  bad([](auto& o) { o.timeout = -1; }, "timeout");
}

BOOST_AUTO_TEST_CASE(a_threshold_above_the_sampled_nodes_or_a_sum_that_wraps_is_refused) {
  secagg_plus_options o;
  o.num_shares = {7, false};
  o.reconstruction_threshold = {6, false};
  auto p = resolve(o, 4);  // 4 shares at most, threshold 6
  BOOST_REQUIRE(!p);
  BOOST_TEST(p.error().what.find("larger than the 4 shares") != std::string::npos);
  secagg_plus_options d;
  BOOST_TEST(resolve(d, 1023).has_value());
  auto wraps = resolve(d, 1024);  // 1024 * 2^22 = 2^32
  BOOST_REQUIRE(!wraps);
  BOOST_TEST(wraps.error().what.find("wrap") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_run_config_reads_counts_fractions_and_refuses_other_types) {
  config_record c;
  c.insert_or_assign("num-shares", 0.5);
  c.insert_or_assign("reconstruction-threshold", int64_t{3});
  c.insert_or_assign("max-weight", int64_t{6000});
  auto o = options_from_config(c);
  BOOST_REQUIRE(o);
  BOOST_TEST(o->num_shares.fraction);
  BOOST_TEST(!o->reconstruction_threshold.fraction);
  BOOST_TEST(o->max_weight == 6000.0);
  c.insert_or_assign("quantization-range", std::string("big"));
  auto bad = options_from_config(c);
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.error().what.find("quantization-range") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
