#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "messages/buffer.hpp"
#include "messages/dtype.hpp"
#include "messages/expected.hpp"

namespace stamen {

/// Flower's Array: a dtype, a shape and raw little-endian bytes. The bytes are
/// a shared buffer, so copying an array is cheap and an array decoded from a
/// message points into that message's bytes.
class array {
 public:
  /// A placeholder to assign to: float32, an empty shape and no bytes.
  array() = default;

  /// Validates that `bytes` holds exactly `product(shape) * item_size(type)`
  /// bytes and that no dimension is negative.
  static expected<array> make(dtype type, std::vector<int64_t> shape, buffer bytes);

  /// Copies `values` into a new array of the given shape; throws
  /// std::invalid_argument when the element count does not match.
  template <class T>
  static array from_values(dtype type, std::vector<int64_t> shape, const std::vector<T>& values);

  dtype type() const { return type_; }  ///< Element type (Flower's `Array.dtype`).
  /// Dimensions, outermost first (Flower's `Array.shape`); empty for a scalar.
  const std::vector<int64_t>& shape() const { return shape_; }
  /// The shared bytes; copy the buffer to keep them alive past this array.
  const buffer& bytes() const { return bytes_; }
  /// First byte of the elements (8-byte aligned when decoded or allocated here).
  const std::byte* data() const { return bytes_.data(); }
  size_t nbytes() const { return bytes_.size(); }  ///< Length of the data in bytes.
  /// Element count, the product of `shape()` (1 for a scalar).
  int64_t numel() const;

  /// Copies the elements out as `T` (which must match the dtype's size).
  template <class T>
  std::vector<T> to_vector() const {
    std::vector<T> out(nbytes() / sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), data(), out.size() * sizeof(T));
    return out;
  }

  /// "float32[6, 1, 5, 5]"
  std::string describe() const;

  /// Equal dtype, shape and bytes.
  friend bool operator==(const array& a, const array& b) {
    return a.type_ == b.type_ && a.shape_ == b.shape_ && a.bytes_ == b.bytes_;
  }
  /// Negation of `operator==`.
  friend bool operator!=(const array& a, const array& b) { return !(a == b); }

 private:
  array(dtype type, std::vector<int64_t> shape, buffer bytes)
      : type_(type), shape_(std::move(shape)), bytes_(std::move(bytes)) {}

  static array from_raw(dtype type, std::vector<int64_t> shape, const void* data, size_t n);

  dtype type_ = dtype::float32;
  std::vector<int64_t> shape_;
  buffer bytes_;
};

/// The byte length an array of `type` and `shape` must have, or a failure on a
/// negative dimension or an overflow.
expected<size_t> expected_nbytes(dtype type, const std::vector<int64_t>& shape);

template <class T>
array array::from_values(dtype type, std::vector<int64_t> shape, const std::vector<T>& values) {
  return from_raw(type, std::move(shape), values.data(), values.size() * sizeof(T));
}

}  // namespace stamen
