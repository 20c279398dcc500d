#pragma once

#include <optional>
#include <random>

#include "messages/message.hpp"

namespace stamen {

// The arithmetic of Flower's differential-privacy wrappers and mods
// (flwr.common.differential_privacy), shared by both sides.

/// The train ConfigRecord key of the clipping norm C that the server sends to
/// the clients' clipping mods, as Flower names it (KEY_CLIPPING_NORM).
inline constexpr const char* key_clipping_norm = "clipping_norm";
/// The reply MetricRecord key of adaptive clipping's bit b_i (1: left unclipped).
inline constexpr const char* key_norm_bit = "norm_bit";

/// A model whose update was clipped.
struct clipped_update {
  array_record arrays;   ///< reference + the clipped update, in the model's dtypes
  double norm = 0;       ///< ||model - reference|| before clipping
  bool clipped = false;  ///< whether the update was scaled down
};

/// Clips the update `model - reference` to L2 norm `clipping_norm` (FlatClip,
/// McMahan et al., 2018): the result is reference + min(1, C / ||Δ||) * Δ.
/// The norm spans every floating-point array; integer arrays (counters) are
/// passed through. Fails when the two records differ in keys, dtypes or shapes.
expected<clipped_update> clip_update(const array_record& model, const array_record& reference,
                                     double clipping_norm);

/// Adds N(0, stddev²) to every value of every floating-point array.
void add_gaussian_noise(array_record& arrays, double stddev, std::mt19937_64& rng);

/// The standard deviation of central DP noise on the mean of m clipped
/// updates: noise_multiplier * clipping_norm / m (McMahan et al., 2018).
double central_noise_stddev(double noise_multiplier, double clipping_norm, double m);

/// The noise of adaptive clipping (Andrew et al., 2021): the stddev of the
/// noise on the count of unclipped updates, and the noise multiplier left for
/// the updates, so that the two together spend the budget of z.
struct adaptive_noise {
  double clipped_count_stddev = 0;     ///< σ_b: as given, else m / 20 (else 0 when z is 0)
  /// z_Δ, the multiplier for the updates' noise; 0 when z is 0.
  double update_noise_multiplier = 0;
};
/// Splits the noise multiplier z between the count and the updates for m
/// sampled updates: σ_b = `clipped_count_stddev`, default m / 20, and
/// z_Δ = (z^-2 - (2 σ_b)^-2)^(-1/2), as Flower's adaptive-clipping wrappers
/// compute them. Fails (errc::invalid_argument, saying what to change) when
/// z >= 2 σ_b, for which no z_Δ exists; z = 0 means no noise at all.
expected<adaptive_noise> adaptive_noise_params(double noise_multiplier, double m,
                                               std::optional<double> clipped_count_stddev);

/// The geometric update of the clipping norm (Andrew et al., 2021):
/// C * exp(-lr * (unclipped_fraction - target_quantile)).
double next_clipping_norm(double clipping_norm, double lr, double unclipped_fraction,
                          double target_quantile);

/// Local DP's noise: sensitivity * sqrt(2 ln(1.25 / delta)) / epsilon
/// (the Gaussian mechanism; Dwork & Roth, 2014).
double local_dp_stddev(double sensitivity, double epsilon, double delta);

}  // namespace stamen
