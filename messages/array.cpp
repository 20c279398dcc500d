#include "messages/array.hpp"

#include <limits>
#include <stdexcept>

namespace stamen {

expected<size_t> expected_nbytes(dtype type, const std::vector<int64_t>& shape) {
  if (static_cast<uint8_t>(type) >= dtype_count)
    return fail(errc::shape_mismatch, "unknown dtype " + std::to_string(static_cast<int>(type)));
  size_t n = item_size(type);
  for (size_t i = 0; i < shape.size(); ++i) {
    auto d = shape[i];
    if (d < 0)
      return fail(errc::shape_mismatch,
                  "dimension " + std::to_string(i) + " is negative (" + std::to_string(d) + ")");
    if (d != 0 && n > std::numeric_limits<size_t>::max() / static_cast<size_t>(d))
      return fail(errc::shape_mismatch, "shape overflows the address space");
    n *= static_cast<size_t>(d);
  }
  return n;
}

expected<array> array::make(dtype type, std::vector<int64_t> shape, buffer bytes) {
  auto want = expected_nbytes(type, shape);
  if (!want) return want.error();
  if (*want != bytes.size())
    return fail(errc::shape_mismatch, std::string{to_string(type)} + " array of shape " +
                                          array{type, shape, {}}.describe() + " needs " +
                                          std::to_string(*want) + " bytes, got " +
                                          std::to_string(bytes.size()));
  return array{type, std::move(shape), std::move(bytes)};
}

array array::from_raw(dtype type, std::vector<int64_t> shape, const void* data, size_t n) {
  auto result = make(type, std::move(shape), buffer::copy_of(data, n));
  if (!result) throw std::invalid_argument(result.error().what);
  return std::move(result).value();
}

int64_t array::numel() const {
  int64_t n = 1;
  for (auto d : shape_) n *= d;
  return n;
}

std::string array::describe() const {
  std::string out{to_string(type_)};
  out += '[';
  for (size_t i = 0; i < shape_.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape_[i]);
  }
  out += ']';
  return out;
}

}  // namespace stamen
