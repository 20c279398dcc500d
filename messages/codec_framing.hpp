#pragma once

// Cap'n Proto's framing as the codec's encoder and decoder both need it:
// limits and word arithmetic. Internal to the codec (namespace detail).

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace stamen::detail {

// Cap'n Proto addresses at most 2^29 words in one segment.
constexpr size_t max_segment_words = (size_t{1} << 29) - 1;
// Cap'n Proto refuses more segments than this, we say so first and clearer.
constexpr uint64_t max_segments = 512;

inline size_t round8(size_t n) { return (n + 7) & ~size_t{7}; }

inline uint32_t read_le32(const std::byte* p) {
  uint32_t x;
  std::memcpy(&x, p, 4);
  return x;  // Cap'n Proto's framing is little-endian, as is every target we build for.
}

}  // namespace stamen::detail
