#include "messages/dtype.hpp"

namespace stamen {

namespace {

struct dtype_info {
  std::string_view name;
  size_t size;
};

constexpr dtype_info infos[dtype_count] = {
  {"float32", 4}, {"float64", 8}, {"int64", 8},   {"int32", 4}, {"uint8", 1},
  {"bool", 1},    {"float16", 2}, {"int8", 1},    {"int16", 2}, {"bfloat16", 2},
};

}  // namespace

size_t item_size(dtype x) { return infos[static_cast<uint8_t>(x)].size; }

std::string_view to_string(dtype x) { return infos[static_cast<uint8_t>(x)].name; }

std::optional<dtype> parse_dtype(std::string_view name) {
  for (uint8_t i = 0; i < dtype_count; ++i)
    if (infos[i].name == name) return static_cast<dtype>(i);
  return std::nullopt;
}

}  // namespace stamen
