#pragma once

#include "runtime/client_app.hpp"

namespace stamen {

/// The client half of SecAgg+ (Flower's secaggplus_mod): the outermost mod
/// around a ClientApp's train handler. It answers the four stages a
/// SecAggPlusWorkflow sends in `train` messages carrying a "secaggplus"
/// ConfigRecord (other messages pass through untouched):
///
/// - setup: two fresh X25519 key pairs, the public halves in the reply;
/// - share-keys: a fresh self-mask seed b; b and the mask key sk1 are
///   Shamir-shared among the neighbours named (itself included), each
///   neighbour's pair sealed with AES-256-GCM under a key agreed with it;
/// - collect-masked-vectors: opens the shares forwarded to it, calls the
///   handler with the instruction's own content, and replies with its update
///   quantized, weighted, masked with b and with a pairwise mask for each
///   neighbour whose shares it holds, instead of the arrays (metrics stay);
/// - unmask: reveals b's share for each neighbour named alive and sk1's for
///   each named dead, never both for one node, and only once per round.
///
/// What it keeps between stages lives in the node's context.state (record
/// "secaggplus") and never leaves the node except as those shares. A stage
/// out of order or of another round, a replayed or malformed share, a
/// request to reveal both secrets of a node, or an update out of range is
/// refused with an error reply (mod_failed_precondition, saying why) and
/// the state stays as it was: the server then treats the node as dropped.
message secaggplus_mod(const message& msg, context& ctx, const handler& next);

}  // namespace stamen
