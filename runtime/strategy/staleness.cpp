#include "runtime/strategy/staleness.hpp"

#include <cmath>

#include "runtime/format.hpp"

namespace stamen {

double staleness_fn::operator()(int64_t tau) const {
  auto t = static_cast<double>(tau);
  switch (k) {
    case kind::constant: return 1.0;
    case kind::polynomial: return std::pow(1.0 + t, -exponent);
    case kind::hinge: return t <= hinge_b ? 1.0 : 1.0 / (hinge_a * (t - hinge_b) + 1.0);
  }
  return 1.0;
}

std::string staleness_fn::describe() const {
  switch (k) {
    case kind::constant: return "constant";
    case kind::polynomial: return "polynomial (a = " + format_double("%g", exponent) + ")";
    case kind::hinge:
      return "hinge (a = " + format_double("%g", hinge_a) + ", b = " + format_double("%g", hinge_b) + ")";
  }
  return "?";
}

}  // namespace stamen
