#include "runtime/fault/poison.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>

using namespace stamen;

namespace {

array_record arrays_of(std::vector<float> w, int64_t steps = 3) {
  array_record r;
  r.insert_or_assign("w", array::from_values(dtype::float32, {static_cast<int64_t>(w.size())}, w));
  r.insert_or_assign("steps", array::from_values(dtype::int64, {1}, std::vector<int64_t>{steps}));
  return r;
}

std::vector<float> w_of(const array_record& r) { return r.get("w")->to_vector<float>(); }

}  // namespace

BOOST_AUTO_TEST_SUITE(poison)

BOOST_AUTO_TEST_CASE(each_kind_follows_its_definition) {
  auto global = arrays_of({1, 2, 3});
  auto honest = arrays_of({1.5f, 1.0f, 3.0f}, 4);  // update (0.5, -1, 0)
  auto with = [&](poison_kind how, double factor) {
    poison_spec s;
    s.how = how;
    s.factor = factor;
    return poison_arrays(honest, &global, s, 1);
  };
  BOOST_TEST((w_of(with(poison_kind::sign_flip, 5)) == std::vector<float>{-1.5f, 7.0f, 3.0f}));
  BOOST_TEST((w_of(with(poison_kind::scale, 3)) == std::vector<float>{2.5f, -1.0f, 3.0f}));
  BOOST_TEST((w_of(with(poison_kind::zero, 1)) == std::vector<float>{1, 2, 3}));
  // Integer arrays (counters) are left alone.
  BOOST_TEST(with(poison_kind::sign_flip, 5).get("steps")->to_vector<int64_t>()[0] == 4);
  // Without the global arrays the update is taken against zero.
  poison_spec flip;
  flip.how = poison_kind::sign_flip;
  flip.factor = 2;
  BOOST_TEST((w_of(poison_arrays(honest, nullptr, flip, 1)) == std::vector<float>{-3.0f, -2.0f, -6.0f}));
}

BOOST_AUTO_TEST_CASE(noise_is_seeded_and_has_sigma) {
  std::vector<float> zeros(20000, 0.0f);
  auto global = arrays_of(zeros), honest = arrays_of(zeros);
  poison_spec s;
  s.how = poison_kind::random;
  s.sigma = 0.5;
  auto a = w_of(poison_arrays(honest, &global, s, 42));
  auto b = w_of(poison_arrays(honest, &global, s, 42));
  auto c = w_of(poison_arrays(honest, &global, s, 43));
  BOOST_TEST((a == b));
  BOOST_TEST((a != c));
  double ss = 0;
  for (auto x : a) ss += static_cast<double>(x) * x;
  BOOST_TEST(std::abs(std::sqrt(ss / a.size()) / 0.5 - 1) < 0.05);
}

BOOST_AUTO_TEST_CASE(content_keeps_or_replaces_the_claimed_weight) {
  record_dict instruction, reply;
  instruction.insert_or_assign("arrays", arrays_of({0, 0}));
  reply.insert_or_assign("arrays", arrays_of({1, 1}));
  reply.insert_or_assign("metrics", metric_record{{"num-examples", int64_t{60}}, {"train_loss", 0.3}});
  poison_spec s;
  s.how = poison_kind::scale;
  s.factor = 10;
  auto kept = reply;
  poison_content(kept, instruction, s, 1);
  BOOST_TEST(std::get<int64_t>(*kept.metrics("metrics")->get("num-examples")) == 60);
  BOOST_TEST((w_of(*kept.arrays("arrays")) == std::vector<float>{10, 10}));
  s.num_examples = 100000;
  poison_content(reply, instruction, s, 1);
  BOOST_TEST(std::get<int64_t>(*reply.metrics("metrics")->get("num-examples")) == 100000);
}

BOOST_AUTO_TEST_SUITE_END()
