#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace stamen {

/// Element types an Array may hold. Values are stable: they are the wire values.
enum class dtype : uint8_t {
  float32 = 0,   ///< IEEE 754 single precision, 4 bytes; NumPy's float32, torch.float32
  float64 = 1,   ///< IEEE 754 double precision, 8 bytes
  int64 = 2,     ///< signed, 8 bytes
  int32 = 3,     ///< signed, 4 bytes
  uint8 = 4,     ///< unsigned, 1 byte (image pixels, raw bytes)
  bool_ = 5,     ///< NumPy's "bool": 1 byte, 0 or 1 (the underscore avoids the keyword)
  float16 = 6,   ///< IEEE 754 half precision, 2 bytes
  int8 = 7,      ///< signed, 1 byte
  int16 = 8,     ///< signed, 2 bytes
  bfloat16 = 9,  ///< brain float (float32's exponent, 7-bit mantissa), 2 bytes; torch.bfloat16
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
