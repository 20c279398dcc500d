#include "messages/array.hpp"

#include <boost/test/unit_test.hpp>

#include "messages/array_record.hpp"

using namespace stamen;

BOOST_AUTO_TEST_SUITE(array_suite)

BOOST_AUTO_TEST_CASE(make_checks_byte_length_against_shape_and_dtype) {
  auto ok = array::make(dtype::float32, {2, 3}, buffer::allocate(24).first);
  BOOST_REQUIRE(ok);
  BOOST_TEST(ok->numel() == 6);
  BOOST_TEST(ok->describe() == "float32[2, 3]");

  auto short_bytes = array::make(dtype::float32, {2, 3}, buffer::allocate(20).first);
  BOOST_REQUIRE(!short_bytes);
  BOOST_TEST(short_bytes.error().code == errc::shape_mismatch);
  BOOST_TEST(short_bytes.error().what.find("needs 24 bytes, got 20") != std::string::npos);

  auto negative = array::make(dtype::int64, {-1}, buffer{});
  BOOST_REQUIRE(!negative);
  BOOST_TEST(negative.error().what.find("negative") != std::string::npos);

  auto overflow = array::make(dtype::float64, {int64_t{1} << 62, 1 << 20}, buffer{});
  BOOST_REQUIRE(!overflow);
  BOOST_TEST(overflow.error().what.find("overflow") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(scalars_and_empty_arrays) {
  auto scalar = array::from_values(dtype::float64, {}, std::vector<double>{3.5});
  BOOST_TEST(scalar.numel() == 1);
  BOOST_TEST(scalar.to_vector<double>()[0] == 3.5);
  auto empty = array::from_values(dtype::int32, {0, 4}, std::vector<int32_t>{});
  BOOST_TEST(empty.nbytes() == 0u);
  BOOST_CHECK_THROW(array::from_values(dtype::int32, {3}, std::vector<int32_t>{1, 2}),
                    std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(array_record_counts_bytes_and_keeps_order) {
  array_record r;
  r.insert_or_assign("b", array::from_values(dtype::uint8, {3}, std::vector<uint8_t>{1, 2, 3}));
  r.insert_or_assign("a", array::from_values(dtype::float32, {2}, std::vector<float>{1, 2}));
  r.insert_or_assign("b", array::from_values(dtype::uint8, {1}, std::vector<uint8_t>{9}));
  BOOST_TEST(r.count_bytes() == 9u);
  BOOST_TEST(r.begin()->first == "b");
  BOOST_TEST(r.size() == 2u);
}

BOOST_AUTO_TEST_CASE(dtype_names_round_trip) {
  for (uint8_t i = 0; i < dtype_count; ++i) {
    auto t = static_cast<dtype>(i);
    BOOST_TEST((parse_dtype(to_string(t)) == t));
  }
  BOOST_TEST(!parse_dtype("complex64").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
