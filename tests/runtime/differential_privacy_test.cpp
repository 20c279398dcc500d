// The DP wrappers' noise and the client mods, checked from their definitions.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "runtime/strategy/differential_privacy.hpp"
#include "runtime/strategy/dp_clipping.hpp"
#include "runtime/dp_mods.hpp"
#include "runtime/strategy/fed_avg.hpp"

using namespace stamen;

namespace {

constexpr int64_t n = 20000;

array_record filled(double v) {
  array_record r;
  r.insert_or_assign("x", array::from_values(dtype::float64, {n}, std::vector<double>(n, v)));
  return r;
}

message train_reply(uint64_t node, array_record arrays, std::optional<int64_t> norm_bit = {}) {
  auto in = make_instruction({}, "train", node);
  record_dict c;
  c.insert_or_assign("arrays", std::move(arrays));
  metric_record m{{"num-examples", int64_t{10}}};
  if (norm_bit) m.insert_or_assign(key_norm_bit, *norm_bit);
  c.insert_or_assign("metrics", std::move(m));
  return make_reply(*in, c);
}

struct moments {
  double mean = 0, stddev = 0;
};

moments of(const std::vector<double>& xs, double minus) {
  moments m;
  for (auto x : xs) m.mean += x - minus;
  m.mean /= static_cast<double>(xs.size());
  for (auto x : xs) m.stddev += (x - minus - m.mean) * (x - minus - m.mean);
  m.stddev = std::sqrt(m.stddev / static_cast<double>(xs.size() - 1));
  return m;
}

fed_avg_options quiet() {
  fed_avg_options o;
  o.seed = 1;
  return o;
}

// Four identical updates of norm sqrt(n) * 0.01 > C = 1, clipped to C and
// averaged: every coordinate is 1 / sqrt(n) before noise.
std::vector<double> noisy_round(strategy& s, std::optional<int64_t> norm_bit = {}) {
  auto agg = s.make_train_aggregator(1, filled(0));
  for (uint64_t k = 1; k <= 4; ++k) BOOST_REQUIRE(agg->accept(train_reply(k, filled(0.01), norm_bit)).has_value());
  auto out = agg->finish();
  BOOST_REQUIRE(out.arrays.has_value());
  return out.arrays->get("x")->to_vector<double>();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(differential_privacy)

BOOST_AUTO_TEST_CASE(fixed_clipping_noise_has_stddev_z_c_over_m) {
  dp_fixed_clipping_options o;
  o.noise_multiplier = 2;
  o.clipping_norm = 1;
  o.num_sampled_clients = 4;
  o.seed = 11;
  dp_fixed_clipping s(std::make_unique<fed_avg>(quiet()), clipping_side::server, o);
  auto xs = noisy_round(s);
  auto m = of(xs, 1 / std::sqrt(static_cast<double>(n)));
  double want = 2.0 * 1.0 / 4.0;
  BOOST_TEST(std::abs(m.stddev / want - 1) < 0.05, "stddev " << m.stddev << ", want " << want);
  BOOST_TEST(std::abs(m.mean) < 5 * want / std::sqrt(static_cast<double>(n)));
  BOOST_TEST(s.last_noise_stddev() == want);

  // The same seed gives the same noise; another seed other noise.
  dp_fixed_clipping again(std::make_unique<fed_avg>(quiet()), clipping_side::server, o);
  BOOST_TEST((noisy_round(again) == xs));
  o.seed = 12;
  dp_fixed_clipping other(std::make_unique<fed_avg>(quiet()), clipping_side::server, o);
  BOOST_TEST((noisy_round(other) != xs));
}

BOOST_AUTO_TEST_CASE(adaptive_clipping_noise_spends_part_of_z_on_the_count) {
  dp_adaptive_clipping_options o;
  o.noise_multiplier = 0.1;
  o.num_sampled_clients = 4;  // clipped_count_stddev = 4 / 20 = 0.2
  o.initial_clipping_norm = 1;
  o.seed = 5;
  dp_adaptive_clipping s(std::make_unique<fed_avg>(quiet()), clipping_side::client, o);
  // Client side: the replies arrive clipped (here by hand) with their bits.
  auto agg = s.make_train_aggregator(1, filled(0));
  double c = 1 / std::sqrt(static_cast<double>(n));
  for (uint64_t k = 1; k <= 4; ++k) BOOST_REQUIRE(agg->accept(train_reply(k, filled(c), 0)).has_value());
  auto out = agg->finish();
  auto m = of(out.arrays->get("x")->to_vector<double>(), c);
  double z_delta = std::pow(std::pow(0.1, -2) - std::pow(2 * 0.2, -2), -0.5);
  double want = z_delta * 1.0 / 4;
  BOOST_TEST(std::abs(m.stddev / want - 1) < 0.05, "stddev " << m.stddev << ", want " << want);
  // Every update was clipped: the norm must grow (b̃ ≈ 0 < γ = 0.5).
  BOOST_TEST(s.clipping_norm() > 1.0);

  // A reply without its norm bit is refused, naming the mod.
  auto agg2 = s.make_train_aggregator(2, filled(0));
  auto no_bit = agg2->accept(train_reply(1, filled(c)));
  BOOST_REQUIRE(!no_bit.has_value());
  BOOST_TEST(no_bit.error().what.find("adaptiveclipping_mod") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(adaptive_noise_needs_z_below_twice_the_count_stddev) {
  auto bad = adaptive_noise_params(0.5, 4, std::nullopt);  // 2 * 4/20 = 0.4
  BOOST_REQUIRE(!bad.has_value());
  BOOST_TEST(bad.error().what.find("must be below 2 * clipped_count_stddev = 0.4") != std::string::npos,
             bad.error().what);
  dp_adaptive_clipping_options o;
  o.noise_multiplier = 0.5;
  o.num_sampled_clients = 4;
  BOOST_CHECK_THROW(dp_adaptive_clipping(std::make_unique<fed_avg>(quiet()), clipping_side::server, o),
                    std::invalid_argument);
  auto none = adaptive_noise_params(0, 4, std::nullopt);
  BOOST_TEST(none->update_noise_multiplier == 0.0);
}

BOOST_AUTO_TEST_CASE(server_side_wrapper_refuses_rounds_with_failures) {
  dp_fixed_clipping_options o;
  o.clipping_norm = 1;
  dp_fixed_clipping s(std::make_unique<fed_avg>(quiet()), clipping_side::server, o);
  phase_report r;
  r.sampled = 5, r.results = 4, r.failures = 1;
  auto why = s.reject_train_round(r);
  BOOST_REQUIRE(why.has_value());
  BOOST_TEST(why->find("1 failure(s)") != std::string::npos);
  r.results = 5, r.failures = 0;
  BOOST_TEST(!s.reject_train_round(r).has_value());
}

// --- the client mods ----------------------------------------------------------

namespace {

message instruction(std::optional<double> clipping_norm) {
  record_dict c;
  c.insert_or_assign("arrays", filled(0));
  config_record cfg{{"server-round", int64_t{1}}};
  if (clipping_norm) cfg.insert_or_assign(key_clipping_norm, *clipping_norm);
  c.insert_or_assign("config", cfg);
  return *make_instruction(c, "train", 3);
}

handler trains_to(double v) {
  return [v](const message& msg, context&) {
    record_dict r;
    r.insert_or_assign("arrays", filled(v));
    r.insert_or_assign("metrics", metric_record{{"num-examples", int64_t{1}}});
    return make_reply(msg, r);
  };
}

double norm_of(const message& reply) {
  double s = 0;
  for (auto x : reply.content().arrays("arrays")->get("x")->to_vector<double>()) s += x * x;
  return std::sqrt(s);
}

}  // namespace

BOOST_AUTO_TEST_CASE(fixedclipping_mod_clips_to_the_norm_the_server_sent) {
  context ctx;
  auto big = fixedclipping_mod(instruction(2.0), ctx, trains_to(0.1));  // norm 14.1
  BOOST_REQUIRE(big.has_content());
  BOOST_TEST(norm_of(big) == 2.0, boost::test_tools::tolerance(1e-9));
  auto small = fixedclipping_mod(instruction(100.0), ctx, trains_to(0.1));
  BOOST_TEST(norm_of(small) == 0.1 * std::sqrt(static_cast<double>(n)), boost::test_tools::tolerance(1e-9));

  auto refused = fixedclipping_mod(instruction(std::nullopt), ctx, trains_to(0.1));
  BOOST_REQUIRE(refused.has_error());
  BOOST_TEST(refused.error().code == error_code::mod_failed_precondition);
  BOOST_TEST(refused.error().reason.find("requires 'clipping_norm'") != std::string::npos,
             refused.error().reason);
}

BOOST_AUTO_TEST_CASE(adaptiveclipping_mod_reports_whether_the_update_fit) {
  context ctx;
  auto clipped = adaptiveclipping_mod(instruction(2.0), ctx, trains_to(0.1));
  auto fit = adaptiveclipping_mod(instruction(100.0), ctx, trains_to(0.1));
  BOOST_TEST(std::get<int64_t>(*clipped.content().metrics("metrics")->get(key_norm_bit)) == 0);
  BOOST_TEST(std::get<int64_t>(*fit.content().metrics("metrics")->get(key_norm_bit)) == 1);
}

BOOST_AUTO_TEST_CASE(local_dp_mod_clips_then_adds_gaussian_noise) {
  local_dp_options o;
  o.clipping_norm = 1;
  o.sensitivity = 0.1;
  o.epsilon = 2;
  o.delta = 1e-5;
  o.seed = 9;
  auto dp = local_dp_mod(o);
  context ctx;
  auto reply = dp(instruction(std::nullopt), ctx, trains_to(0.1));
  BOOST_REQUIRE(reply.has_content());
  auto xs = reply.content().arrays("arrays")->get("x")->to_vector<double>();
  auto m = of(xs, 1 / std::sqrt(static_cast<double>(n)));  // clipped to norm 1 first
  double want = 0.1 * std::sqrt(2 * std::log(1.25 / 1e-5)) / 2;
  BOOST_TEST(std::abs(m.stddev / want - 1) < 0.05, "stddev " << m.stddev << ", want " << want);
  BOOST_TEST(std::abs(m.mean) < 5 * want / std::sqrt(static_cast<double>(n)));
  o.epsilon = 0;
  BOOST_CHECK_THROW(local_dp_mod(o), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
