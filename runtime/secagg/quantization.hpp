#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "messages/array_record.hpp"
#include "messages/expected.hpp"

namespace stamen::secagg {

// SecAgg+ sums integers, so a node's update is quantized first, as Flower
// does: each value is scaled by the node's weight factor dq (num-examples /
// max-weight, itself quantized), clipped to [-c, c], mapped onto [0, Q] with
// stochastic rounding (unbiased), and the sum of such values over n nodes
// maps back with dequantize_mean. Per coordinate, the mean that comes back
// differs from the weighted mean of the unclipped values by at most
// n (2c + max|x|) / sum(q_i), where q_i = round(dq_i Q) are the nodes'
// quantized weights: a step 2c/Q per node from rounding the values, and
// half a step 1/Q per node from rounding the weights.

/// "name:dtype[shape];..." of every array, in order: what both ends check
/// a masked vector's layout against.
std::string layout_of(const array_record& arrays);

/// The values of every array (float32 or float64) in order, as doubles;
/// fails naming an array of another dtype.
expected<std::vector<double>> flatten(const array_record& arrays);

/// Arrays shaped and typed as `like`, holding `values` in order; fails when
/// the count differs.
expected<array_record> unflatten(const std::vector<double>& values, const array_record& like);

/// q = round(weight / max_weight * Q), the node's quantized weight factor.
uint64_t quantized_weight(double weight, double max_weight, uint64_t quantization_range);

/// out[i] = stochastic_round((clip(x[i] * q / Q, -c, c) + c) * Q / (2c)),
/// each in [0, Q]; `seed` drives the rounding's coin flips.
void quantize(const std::vector<double>& x, uint64_t q, double clipping_range,
              uint64_t quantization_range, uint64_t seed, uint64_t* out);

/// The weighted mean from the sum of `n` nodes' quantized vectors:
/// (sum * 2c / Q - n c) * Q / total_q, for each of the `count` values.
std::vector<double> dequantize_mean(const uint64_t* sum, size_t count, size_t n, uint64_t total_q,
                                    double clipping_range, uint64_t quantization_range);

}  // namespace stamen::secagg
