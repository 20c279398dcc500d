#pragma once

#include <cstdint>
#include <string>

namespace stamen {

/// How much an update counts given its staleness τ (the global version now
/// minus the one its node trained from), from FedAsync (Xie et al., 2019):
///   constant:   s(τ) = 1
///   polynomial: s(τ) = (1 + τ)^-a
///   hinge:      s(τ) = 1 when τ <= b, else 1 / (a (τ - b) + 1)
struct staleness_fn {
  enum class kind : uint8_t { constant, polynomial, hinge };
  kind k = kind::constant;
  double exponent = 0.5;  ///< polynomial's a
  double hinge_a = 10;    ///< hinge's a
  double hinge_b = 4;     ///< hinge's b

  double operator()(int64_t tau) const;
  /// "polynomial (a = 0.5)", for the summary.
  std::string describe() const;
};

}  // namespace stamen
