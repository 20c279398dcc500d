#include "messages/buffer.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>

using namespace stamen;

BOOST_AUTO_TEST_SUITE(buffer_suite)

BOOST_AUTO_TEST_CASE(allocate_zeroes_and_aligns) {
  for (size_t n : {size_t{1}, size_t{4096}, size_t{64} << 20}) {
    auto [buf, raw] = buffer::allocate(n);
    BOOST_TEST(reinterpret_cast<uintptr_t>(raw) % 8 == 0u);
    BOOST_TEST(std::all_of(raw, raw + n, [](std::byte b) { return b == std::byte{0}; }));
  }
}

BOOST_AUTO_TEST_CASE(join_puts_parts_one_after_another) {
  const char a[] = "abc", b[] = "defgh";
  auto j = buffer::join({buffer::copy_of(a, 3), buffer{}, buffer::copy_of(b, 5)});
  BOOST_REQUIRE_EQUAL(j.size(), 8u);
  BOOST_TEST(std::memcmp(j.data(), "abcdefgh", 8) == 0);
  BOOST_TEST(buffer::join({}).empty());
}

BOOST_AUTO_TEST_CASE(slices_share_the_bytes_and_keep_them_alive) {
  const size_t n = size_t{64} << 20;
  auto [buf, raw] = buffer::allocate(n);
  std::memset(raw, 0x5a, n);
  auto tail = buf.slice(n - 8, 8);
  BOOST_TEST(tail.data() == buf.data() + (n - 8));
  BOOST_TEST(buf.use_count() == 2);
  buf = buffer{};
  BOOST_TEST(tail.use_count() == 1);
  BOOST_TEST((tail.data()[7] == std::byte{0x5a}));
}

BOOST_AUTO_TEST_CASE(a_released_large_buffer_is_reused_and_zeroed_again) {
  // An unusual size, so that no other test left a mapping that fits as well.
  const size_t n = (size_t{37} << 20) + 3;
  const std::byte* first = nullptr;
  {
    auto [buf, raw] = buffer::allocate(n);
    first = raw;
    std::memset(raw, 0xa5, n);
  }
  auto [again, raw] = buffer::allocate(n);
  BOOST_TEST(raw == first);  // the mapping came back, already faulted in
  BOOST_TEST(std::all_of(raw, raw + n, [](std::byte b) { return b == std::byte{0}; }));
}

BOOST_AUTO_TEST_CASE(allocate_for_overwrite_gives_aligned_writable_bytes) {
  for (size_t n : {size_t{0}, size_t{13}, size_t{40} << 20}) {
    auto [buf, raw] = buffer::allocate_for_overwrite(n);
    BOOST_TEST(buf.size() == n);
    BOOST_TEST(reinterpret_cast<uintptr_t>(raw) % 8 == 0u);
    if (n > 0) {
      std::memset(raw, 0x11, n);
      BOOST_TEST((buf.data()[n - 1] == std::byte{0x11}));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
