#include "runtime/strategy/fed_avg.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

using namespace stamen;

namespace {

array_record model(float base, size_t n = 5) {
  std::vector<float> w(n), b(2);
  for (size_t i = 0; i < n; ++i) w[i] = base + static_cast<float>(i);
  b[0] = -base;
  b[1] = base * 0.5f;
  array_record r;
  r.insert_or_assign("w", array::from_values(dtype::float32, {static_cast<int64_t>(n)}, w));
  r.insert_or_assign("b", array::from_values(dtype::float32, {2}, b));
  r.insert_or_assign("steps", array::from_values(dtype::int64, {1},
                                                 std::vector<int64_t>{static_cast<int64_t>(base)}));
  return r;
}

message reply(uint64_t node, array_record arrays, metric_value weight, double loss) {
  auto in = make_instruction({}, "train", node);
  in->meta().message_id = "m" + std::to_string(node);
  record_dict c;
  c.insert_or_assign("arrays", std::move(arrays));
  c.insert_or_assign("metrics", metric_record{{"train_loss", loss}, {"num-examples", weight}});
  return make_reply(*in, c);
}

fed_avg_options opts() {
  fed_avg_options o;
  o.seed = 1;
  return o;
}

// FedAvg computed independently, in long double, straight from the definition.
std::vector<long double> expected_w(const std::vector<std::pair<float, int64_t>>& xs, size_t n) {
  std::vector<long double> out(n, 0);
  long double total = 0;
  for (auto& [base, w] : xs) total += w;
  for (size_t i = 0; i < n; ++i)
    for (auto& [base, w] : xs) out[i] += static_cast<long double>(w) * (base + i) / total;
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fed_avg_suite)

BOOST_AUTO_TEST_CASE(equals_weighted_average_for_any_arrival_order) {
  std::mt19937 rng(3);
  for (size_t clients : {1u, 2u, 7u, 50u}) {
    std::vector<std::pair<float, int64_t>> xs;
    for (size_t c = 0; c < clients; ++c)
      xs.emplace_back(static_cast<float>(rng() % 1000) / 7.f, 1 + static_cast<int64_t>(rng() % 500));
    auto want = expected_w(xs, 5);
    for (int order = 0; order < 3; ++order) {
      std::shuffle(xs.begin(), xs.end(), rng);
      fed_avg s(opts());
      auto agg = s.make_train_aggregator(1, model(0));
      double loss_num = 0, total = 0;
      for (size_t c = 0; c < xs.size(); ++c) {
        auto ok = agg->accept(reply(c + 2, model(xs[c].first), xs[c].second, 0.1 * c));
        BOOST_REQUIRE(ok.has_value());
        loss_num += xs[c].second * 0.1 * c;
        total += xs[c].second;
      }
      auto out = agg->finish();
      BOOST_REQUIRE(out.arrays.has_value());
      auto w = out.arrays->get("w")->to_vector<float>();
      for (size_t i = 0; i < w.size(); ++i)
        BOOST_TEST(std::abs(w[i] - want[i]) <= 1e-6 * std::max<long double>(1, std::abs(want[i])));
      BOOST_REQUIRE(out.metrics.has_value());
      BOOST_TEST(std::get<double>(*out.metrics->get("train_loss")) == loss_num / total,
                 boost::test_tools::tolerance(1e-12));
      BOOST_TEST(!out.metrics->contains("num-examples"));
      BOOST_TEST((out.arrays->get("steps")->type() == dtype::int64));
    }
  }
}

BOOST_AUTO_TEST_CASE(inconsistent_replies_are_rejected_and_not_aggregated) {
  fed_avg s(opts());
  auto agg = s.make_train_aggregator(1, model(0));
  BOOST_REQUIRE(agg->accept(reply(2, model(1), int64_t{10}, 1.0)).has_value());

  auto expect_reject = [&](message m, const std::string& needle) {
    auto r = agg->accept(m);
    BOOST_REQUIRE_MESSAGE(!r.has_value(), "accepted: " << needle);
    BOOST_TEST(r.error().what.find(needle) != std::string::npos, r.error().what);
  };
  expect_reject(reply(3, model(5, 4), int64_t{10}, 1.0), "is float32[4], the global model's is float32[5]");
  auto nan = model(5);
  auto b = nan.get("b")->to_vector<float>();
  b[1] = std::numeric_limits<float>::quiet_NaN();
  nan.insert_or_assign("b", array::from_values(dtype::float32, {2}, b));
  expect_reject(reply(4, nan, int64_t{10}, 1.0), "NaN or Inf");  // after 'w' was folded
  auto inf = model(5);
  inf.insert_or_assign("w", array::from_values(dtype::float32, {5},
      std::vector<float>{1, 2, std::numeric_limits<float>::infinity(), 4, 5}));
  expect_reject(reply(5, inf, int64_t{10}, 1.0), "NaN or Inf");
  expect_reject(reply(6, model(5), int64_t{0}, 1.0), "must be positive");
  expect_reject(reply(7, model(5), -2.0, 1.0), "must be positive");
  auto renamed = model(5);
  renamed.erase("steps");
  renamed.insert_or_assign("other", array::from_values(dtype::int64, {1}, std::vector<int64_t>{1}));
  expect_reject(reply(8, renamed, int64_t{10}, 1.0), "'other' where the global model has 'steps'");
  auto as_f64 = model(5);
  as_f64.insert_or_assign("b", array::from_values(dtype::float64, {2}, std::vector<double>{1, 2}));
  expect_reject(reply(9, as_f64, int64_t{10}, 1.0), "float64[2]");
  auto no_weight = make_reply(*make_instruction({}, "train", 9),
                              record_dict{{"arrays", model(5)},
                                          {"metrics", metric_record{{"train_loss", 1.0}}}});
  expect_reject(no_weight, "no MetricRecord holds the weight 'num-examples'");

  BOOST_REQUIRE(agg->accept(reply(10, model(3), int64_t{30}, 3.0)).has_value());
  auto out = agg->finish();
  auto w = out.arrays->get("w")->to_vector<float>();
  auto want = expected_w({{1.f, 10}, {3.f, 30}}, 5);
  for (size_t i = 0; i < 5; ++i) BOOST_TEST(std::abs(w[i] - want[i]) <= 1e-6 * std::abs(want[i]));
  BOOST_TEST(std::get<double>(*out.metrics->get("train_loss")) == 2.5,
             boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(no_valid_reply_means_no_arrays) {
  fed_avg s(opts());
  auto out = s.aggregate_train(1, {}, model(0));
  BOOST_TEST(!out.arrays.has_value());
  BOOST_TEST(!out.metrics.has_value());
}

BOOST_AUTO_TEST_CASE(weighted_average_of_metrics_and_lists) {
  std::vector<metric_record> rs{
      {{"acc", 0.5}, {"n", int64_t{1}}, {"hist", std::vector<double>{1, 0}}},
      {{"acc", 1.0}, {"n", int64_t{3}}, {"hist", std::vector<double>{0, 1}}}};
  auto out = weighted_average(rs, "n");
  BOOST_TEST(std::get<double>(*out.get("acc")) == 0.875, boost::test_tools::tolerance(1e-12));
  auto hist = std::get<std::vector<double>>(*out.get("hist"));
  BOOST_TEST(hist[0] == 0.25, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(hist[1] == 0.75, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(!out.contains("n"));
}

BOOST_AUTO_TEST_SUITE_END()
