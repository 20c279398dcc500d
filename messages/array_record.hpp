#pragma once

#include "messages/array.hpp"
#include "messages/ordered_map.hpp"

namespace stamen {

/// Flower's ArrayRecord: named arrays in insertion order (a model's state dict).
class array_record : public ordered_map<array> {
 public:
  using ordered_map::ordered_map;

  /// Sum of the arrays' byte lengths.
  size_t count_bytes() const {
    size_t n = 0;
    for (auto& [name, a] : *this) n += a.nbytes();
    return n;
  }
};

}  // namespace stamen
