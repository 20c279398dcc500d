#pragma once

#include <cstdint>

#include "runtime/client_app.hpp"

namespace stamen {

// The client halves of differential privacy (Flower's flwr.clientapp.mod):
// mods around a train handler that clip (and, for local DP, noise) the
// update w_k - w before it leaves the node. A mod whose precondition fails
// answers with an error reply (code mod_failed_precondition) naming it.

/// Clips the reply's update to the `clipping_norm` the server sent in the
/// train ConfigRecord (pairs with dp_fixed_clipping, clipping_side::client).
message fixedclipping_mod(const message& msg, context& ctx, const handler& next);

/// As fixedclipping_mod, and adds `norm_bit` to the reply's MetricRecord: 1
/// when the update was within the norm and left unclipped, 0 when it was
/// clipped (pairs with dp_adaptive_clipping, clipping_side::client).
message adaptiveclipping_mod(const message& msg, context& ctx, const handler& next);

/// LocalDpMod's parameters, with Flower's names.
struct local_dp_options {
  double clipping_norm = 1;  ///< C, the L2 norm the update is clipped to; > 0
  double sensitivity = 1;    ///< the Gaussian mechanism's sensitivity; >= 0
  double epsilon = 1;        ///< the privacy budget ε; > 0 (smaller: more noise)
  double delta = 1e-5;       ///< the failure probability δ; in (0, 1)
  /// Seed of this node's noise (give each node its own).
  uint64_t seed = 0;
};

/// Local differential privacy (Flower's LocalDpMod): clips the update to
/// clipping_norm, then adds N(0, σ²) to every floating-point value of the
/// reply's arrays, σ = sensitivity * sqrt(2 ln(1.25 / delta)) / epsilon.
/// Throws std::invalid_argument on parameters out of range.
mod local_dp_mod(local_dp_options opts);

}  // namespace stamen
