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
  /// The shape of s(τ), as the run-config `staleness` names it.
  enum class kind : uint8_t {
    constant,    ///< s(τ) = 1: staleness is ignored
    polynomial,  ///< s(τ) = (1 + τ)^-a, a = `exponent`
    hinge        ///< s(τ) = 1 up to τ = b, then 1 / (a (τ - b) + 1)
  };
  kind k = kind::constant;  ///< which s(τ); default: constant
  double exponent = 0.5;  ///< polynomial's a
  double hinge_a = 10;    ///< hinge's a
  double hinge_b = 4;     ///< hinge's b

  /// s(τ) for staleness `tau` (>= 0), in (0, 1].
  double operator()(int64_t tau) const;
  /// "polynomial (a = 0.5)", for the summary.
  std::string describe() const;
};

}  // namespace stamen
