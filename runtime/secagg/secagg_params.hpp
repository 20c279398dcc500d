#pragma once

#include <cstdint>
#include <string>

#include "messages/config_record.hpp"
#include "messages/expected.hpp"

namespace stamen::secagg {

/// A count given either as a number or as a fraction (Flower's int | float).
struct count_or_fraction {
  double value = 0;       ///< the count, or the fraction in (0, 1]
  bool fraction = false;  ///< true: `value` is a proportion
};

/// SecAggPlusWorkflow's parameters, with Flower's meaning and defaults (its
/// constructor has no default for the first two: these are its example's).
struct secagg_plus_options {
  /// Shares each node's secrets are split into, its neighbours and itself;
  /// a fraction is of the nodes sampled in a round.
  count_or_fraction num_shares{3, false};
  /// Shares needed to rebuild a secret; a fraction is of num-shares.
  count_or_fraction reconstruction_threshold{2, false};
  double max_weight = 1000.0;            ///< the largest num-examples a node may weigh
  double clipping_range = 8.0;           ///< values are clipped to [-c, c] before quantizing
  uint64_t quantization_range = 1 << 22;  ///< values quantize into [0, quantization-range]
  uint64_t modulus_range = uint64_t{1} << 32;  ///< masks and sums live mod this power of 2
  /// Seconds each stage waits for replies; 0: the round's timeout.
  double timeout = 0;
  /// Seed of the neighbour ring's shuffle; 0: a fresh one each round.
  uint64_t seed = 0;
};

/// Checks every value's domain, as Flower's `_check_init_params` (an integer
/// num-shares or threshold of 1 means all, as there), naming the key.
expected<secagg_plus_options> validate(secagg_plus_options opts);

/// Reads the run config's kebab-case keys (num-shares, reconstruction-threshold,
/// max-weight, clipping-range, quantization-range, modulus-range, timeout;
/// an integer is a count, a float a fraction), each optional, then validates.
expected<secagg_plus_options> options_from_config(const config_record& run_config);

/// What one round uses, for `sampled` nodes.
struct round_params {
  int num_shares = 0;  ///< neighbours per node, itself included (odd unless all)
  int threshold = 0;   ///< shares that rebuild a secret
};

/// num-shares and the threshold for a round of `sampled` nodes, as Flower's
/// setup stage computes them; fails when fewer than 2 nodes are sampled,
/// when the threshold exceeds the shares, or when `sampled` quantized values
/// could wrap around modulus-range.
expected<round_params> resolve(const secagg_plus_options& opts, size_t sampled);

/// The bits of modulus-range (a power of 2).
int modulus_bits(const secagg_plus_options& opts);

}  // namespace stamen::secagg
