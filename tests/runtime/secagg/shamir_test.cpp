#include "runtime/secagg/shamir.hpp"

#include <boost/test/unit_test.hpp>

using namespace stamen;
using namespace stamen::secagg;

BOOST_AUTO_TEST_SUITE(shamir)

// Hand-computed: f(x) = 5 + 3x + 2x^2 gives f(1) = 10, f(2) = 19, f(3) = 32.
BOOST_AUTO_TEST_CASE(a_small_polynomial_evaluates_and_interpolates_as_by_hand) {
  std::vector<uint64_t> f{5, 3, 2};
  BOOST_TEST(poly_eval(f, 1) == 10u);
  BOOST_TEST(poly_eval(f, 2) == 19u);
  BOOST_TEST(poly_eval(f, 3) == 32u);
  auto s = interpolate_at_zero({{1, 10}, {2, 19}, {3, 32}});
  BOOST_REQUIRE(s);
  BOOST_TEST(*s == 5u);
  // Any order of the points.
  s = interpolate_at_zero({{3, 32}, {1, 10}, {2, 19}});
  BOOST_REQUIRE(s);
  BOOST_TEST(*s == 5u);
}

// Hand-computed across the modulus: f(x) = (p - 1) + x gives f(1) = 0 and
// f(2) = 1 (mod p), and the line through (1, 0), (2, 1) meets x = 0 at p - 1.
BOOST_AUTO_TEST_CASE(values_wrap_around_the_prime) {
  const uint64_t p = field_prime;
  BOOST_TEST(p == 2305843009213693951ull);
  BOOST_TEST(poly_eval({p - 1, 1}, 1) == 0u);
  BOOST_TEST(poly_eval({p - 1, 1}, 2) == 1u);
  auto s = interpolate_at_zero({{1, 0}, {2, 1}});
  BOOST_REQUIRE(s);
  BOOST_TEST(*s == p - 1);
  // (p - 1)^2 = 1 and 2^61 = 1 (mod p); 3 * 3^-1 = 1.
  BOOST_TEST(field_mul(p - 1, p - 1) == 1u);
  BOOST_TEST(field_mul(uint64_t{1} << 60, 2) == 1u);
  BOOST_TEST(field_mul(3, field_inv(3)) == 1u);
  BOOST_TEST(field_sub(0, 1) == p - 1);
}

BOOST_AUTO_TEST_CASE(bad_points_are_refused) {
  BOOST_TEST(!interpolate_at_zero({}));
  BOOST_TEST(!interpolate_at_zero({{0, 1}, {1, 2}}));
  BOOST_TEST(!interpolate_at_zero({{1, 1}, {1, 2}}));
  BOOST_TEST(!interpolate_at_zero({{1, field_prime}, {2, 2}}));
}

BOOST_AUTO_TEST_CASE(any_threshold_of_the_shares_rebuild_the_secret) {
  bytes secret(32);
  for (size_t i = 0; i < secret.size(); ++i) secret[i] = static_cast<uint8_t>(255 - 7 * i);
  auto shares = create_shares(secret, 3, 5);
  BOOST_REQUIRE(shares);
  BOOST_TEST(shares->size() == 5u);
  // 4-byte index, 1-byte length, ceil(32 / 7) = 5 elements of 8 bytes.
  for (auto& s : *shares) BOOST_TEST(s.size() == 45u);
  for (int a = 0; a < 5; ++a)
    for (int b = a + 1; b < 5; ++b)
      for (int c = b + 1; c < 5; ++c) {
        auto got = combine_shares({(*shares)[a], (*shares)[b], (*shares)[c]}, 3);
        BOOST_REQUIRE(got);
        BOOST_TEST(*got == secret);
      }
  BOOST_TEST(!combine_shares({(*shares)[0], (*shares)[1]}, 3));
  auto twice = combine_shares({(*shares)[0], (*shares)[0], (*shares)[1]}, 3);
  BOOST_TEST(!twice);
  BOOST_TEST(twice.error().what.find("twice") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_altered_or_truncated_share_does_not_pass_for_the_secret) {
  bytes secret{1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto shares = create_shares(secret, 2, 3);
  BOOST_REQUIRE(shares);
  auto bad = *shares;
  bad[1][6] ^= 0x40;  // a bit of the first chunk's value
  auto got = combine_shares({bad[0], bad[1]}, 2);
  BOOST_TEST((!got || *got != secret));
  auto cut = (*shares)[0];
  cut.pop_back();
  BOOST_TEST(!combine_shares({cut, (*shares)[1]}, 2));
  BOOST_TEST(!create_shares({}, 2, 3));
  BOOST_TEST(!create_shares(secret, 1, 3));
  BOOST_TEST(!create_shares(secret, 4, 3));
}

BOOST_AUTO_TEST_SUITE_END()
