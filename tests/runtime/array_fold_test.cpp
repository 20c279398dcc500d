#include "runtime/strategy/array_fold.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <vector>

using namespace stamen;

namespace {

// Several of the fold's 2048-value blocks, and not a whole number of them.
constexpr int64_t n = 5000;

template <class T>
array ramp(T scale) {
  std::vector<T> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>(i) * scale;
  return array::from_values(std::is_same_v<T, float> ? dtype::float32 : dtype::float64, {n}, v);
}

template <class T>
array with_value_at(array a, size_t at, T value) {
  auto v = a.template to_vector<T>();
  v[at] = value;
  return array::from_values(a.type(), a.shape(), v);
}

std::vector<double> sums(const weighted_sum& s, size_t i) {
  auto& b = s.sum(i);
  return {b.data(), b.data() + b.size()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(array_fold_suite)

BOOST_AUTO_TEST_CASE(the_weighted_mean_is_exact_across_blocks) {
  weighted_sum s;
  BOOST_REQUIRE(s.add(array_record{{"f", ramp(1.0f)}, {"d", ramp(0.5)}}, 1.0));
  BOOST_REQUIRE(s.add(array_record{{"f", ramp(3.0f)}, {"d", ramp(2.5)}}, 3.0));
  auto mean = s.mean();
  auto f = mean.get("f")->to_vector<float>();
  auto d = mean.get("d")->to_vector<double>();
  for (size_t i : {size_t{0}, size_t{2047}, size_t{2048}, size_t{4999}}) {
    BOOST_TEST(f[i] == static_cast<float>(i) * 2.5f);  // (1·i + 3·3i) / 4
    BOOST_TEST(d[i] == static_cast<double>(i) * 2.0);   // (1·0.5i + 3·2.5i) / 4
  }
}

BOOST_AUTO_TEST_CASE(a_non_finite_value_in_any_block_leaves_every_sum_as_it_was) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  weighted_sum s;
  BOOST_REQUIRE(s.add(array_record{{"f", ramp(1.0f)}, {"d", ramp(1.0)}}, 2.0));
  auto f0 = sums(s, 0), d0 = sums(s, 1);
  // In the first block, in the last (partial) one, and in the second array
  // after the first was folded whole.
  for (auto bad : {array_record{{"f", with_value_at(ramp(1.0f), 7, nan)}, {"d", ramp(1.0)}},
                   array_record{{"f", with_value_at(ramp(1.0f), 4500, -std::numeric_limits<float>::infinity())},
                                {"d", ramp(1.0)}},
                   array_record{{"f", ramp(1.0f)}, {"d", with_value_at(ramp(1.0), 4999, inf)}}}) {
    auto r = s.add(bad, 3.0);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().what.find("NaN or Inf") != std::string::npos);
    auto f1 = sums(s, 0), d1 = sums(s, 1);
    for (size_t i = 0; i < f0.size(); ++i) {
      BOOST_REQUIRE(std::isfinite(f1[i]));
      BOOST_REQUIRE(std::isfinite(d1[i]));
      BOOST_REQUIRE(std::abs(f1[i] - f0[i]) <= 1e-12 * (1 + std::abs(f0[i])));
      BOOST_REQUIRE(std::abs(d1[i] - d0[i]) <= 1e-12 * (1 + std::abs(d0[i])));
    }
  }
  BOOST_TEST(s.count() == 1u);
  BOOST_TEST(s.total_weight() == 2.0);
}

BOOST_AUTO_TEST_CASE(every_build_of_the_fold_rounds_like_the_plain_formula) {
  // The fold has AVX2/AVX-512 clones; each must round w*x and then + sum
  // separately (no fused multiply-add), or aggregates would differ in their
  // last bits from one machine to the next.
  std::vector<float> a(n), b(n);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = std::sin(static_cast<float>(i)) * 1e3f;
    b[i] = std::cos(static_cast<float>(i) * 0.7f) / 3.0f;
  }
  const double wa = 0.1, wb = 1.0 / 3.0;
  weighted_sum s;
  BOOST_REQUIRE(s.add(array_record{{"w", array::from_values(dtype::float32, {n}, a)}}, wa));
  BOOST_REQUIRE(s.add(array_record{{"w", array::from_values(dtype::float32, {n}, b)}}, wb));
  auto got = sums(s, 0);
  size_t differ = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    volatile double first = wa * static_cast<double>(a[i]);  // rounded on its own
    volatile double product = wb * static_cast<double>(b[i]);
    differ += got[i] != first + product;
  }
  BOOST_TEST(differ == 0u);
}

BOOST_AUTO_TEST_CASE(a_refused_first_record_leaves_nothing_behind) {
  // The first record sets the sums rather than adding to zeros; one refused
  // part-way (its first array already written) must not count.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  weighted_sum s;
  BOOST_REQUIRE(!s.add(array_record{{"f", ramp(5.0f)}, {"d", with_value_at(ramp(7.0), 4000, std::nan(""))}}, 4.0));
  BOOST_REQUIRE(!s.add(array_record{{"f", with_value_at(ramp(9.0f), 3000, nan)}, {"d", ramp(9.0)}}, 4.0));
  BOOST_TEST(s.count() == 0u);
  BOOST_TEST(s.mean().empty());
  BOOST_REQUIRE(s.add(array_record{{"f", ramp(2.0f)}, {"d", ramp(0.25)}}, 3.0));
  BOOST_REQUIRE(s.add(array_record{{"f", ramp(4.0f)}, {"d", ramp(0.75)}}, 1.0));
  auto f = s.mean().get("f")->to_vector<float>();
  auto d = s.mean().get("d")->to_vector<double>();
  for (size_t i : {size_t{0}, size_t{1}, size_t{2048}, size_t{4000}, size_t{4999}}) {
    BOOST_TEST(f[i] == static_cast<float>(i) * 2.5f);   // (3·2i + 1·4i) / 4
    BOOST_TEST(d[i] == static_cast<double>(i) * 0.375);  // (3·0.25i + 1·0.75i) / 4
  }
}

BOOST_AUTO_TEST_SUITE_END()
