#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace stamen {

/// Element types an Array may hold. Values are stable: they are the wire values.
enum class dtype : uint8_t {
  float32 = 0,
  float64 = 1,
  int64 = 2,
  int32 = 3,
  uint8 = 4,
  bool_ = 5,
  float16 = 6,
  int8 = 7,
  int16 = 8,
  bfloat16 = 9,
};

/// The number of dtypes; wire values at or above it are invalid.
constexpr uint8_t dtype_count = 10;

/// Size of one element in bytes.
size_t item_size(dtype x);

/// NumPy-style name ("float32", "bool", ...).
std::string_view to_string(dtype x);

/// Parses a name produced by `to_string`.
std::optional<dtype> parse_dtype(std::string_view name);

}  // namespace stamen
