#pragma once

#include <cstdint>
#include <optional>

#include "messages/record_dict.hpp"

namespace stamen {

/// How a Byzantine node turns its honest update w_k - w into a malicious one.
enum class poison_kind : uint8_t {
  sign_flip,  ///< w - factor * (w_k - w): the update reversed and scaled
  scale,      ///< w + factor * (w_k - w): the update scaled
  gaussian,   ///< w_k + N(0, sigma²): the honest update with noise on top
  zero,       ///< w: no update at all (a free rider)
  random,     ///< w + N(0, sigma²): an update unrelated to any data
};

/// The kind's name as a poison rule's `how` spells it ("sign-flip", "scale",
/// ...), for messages that name the kind.
const char* to_string(poison_kind x);

/// A poison fault's parameters ([[faults.rule]] action = "poison").
struct poison_spec {
  poison_kind how = poison_kind::sign_flip;  ///< `how` (required in TOML): the kind of poisoning
  double factor = 1;  ///< `factor`, for sign_flip and scale
  double sigma = 1;   ///< `sigma`, >= 0: the noise's stddev for gaussian and random
  /// The weight the node claims instead of its own (num-examples); unset: kept.
  std::optional<int64_t> num_examples;
};

/// `reply` (a node's trained arrays) poisoned against `global` (the arrays
/// its instruction carried) as `spec` says; noise is drawn from `seed`.
/// Only floating-point arrays are changed. When `global` is missing or has
/// other keys or shapes, the update is taken against zero (w = 0).
array_record poison_arrays(const array_record& reply, const array_record* global,
                           const poison_spec& spec, uint64_t seed);

/// Applies `spec` to a train reply's content: every ArrayRecord poisoned
/// against the instruction's first ArrayRecord, and num-examples replaced in
/// every MetricRecord that has it when spec.num_examples is set.
void poison_content(record_dict& reply, const record_dict& instruction, const poison_spec& spec,
                    uint64_t seed);

}  // namespace stamen
