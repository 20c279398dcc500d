#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "messages/array.hpp"
#include "messages/config_record.hpp"
#include "messages/expected.hpp"
#include "messages/record_dict.hpp"
#include "runtime/secagg/secagg_crypto.hpp"

namespace stamen::secagg {

// What the SecAgg+ workflow and mod say to each other, inside `train`
// messages whose group_id is the round: a ConfigRecord named "secaggplus"
// with a "stage" and that stage's keys, and in the masked reply an
// ArrayRecord of that name holding the masked vector. Flower's stages, in
// Flower's order; the keys are Stamen's own (the two ends are Stamen's).

/// The record both ends use, in instructions and replies.
inline constexpr const char* record_key = "secaggplus";

/// The four stages, in order.
inline constexpr const char* stage_setup = "setup";
inline constexpr const char* stage_share_keys = "share-keys";
inline constexpr const char* stage_collect = "collect-masked-vectors";
inline constexpr const char* stage_unmask = "unmask";

/// HKDF labels: the pairwise mask key and the share encryption key of a
/// pair of nodes come from different key pairs and different labels.
inline constexpr std::string_view mask_label = "stamen secagg+ pairwise mask";
inline constexpr std::string_view share_label = "stamen secagg+ share encryption";

/// A node's secrets, Shamir-shared among its neighbours: b (its self mask's
/// seed) and sk1 (the private key of its pairwise masks).
struct share_bundle {
  uint64_t src = 0;     ///< the node whose secrets these are shares of
  uint64_t dst = 0;     ///< the neighbour that holds them
  bytes seed_share;     ///< a share of b
  bytes key_share;      ///< a share of sk1
};

/// src (8) | dst (8) | len(seed_share) (4) | seed_share | key_share, little-endian.
bytes encode_bundle(const share_bundle& b);
/// The inverse of encode_bundle; fails on a truncated or inconsistent buffer.
expected<share_bundle> decode_bundle(const bytes& plaintext);

/// What a share's encryption authenticates: the round and the direction, so
/// that a share is refused in another round or from another pair.
bytes share_aad(int64_t round, uint64_t src, uint64_t dst);

/// A masked vector on the wire: int32 words (the bits of the uint32 values)
/// when modulus-range <= 2^32, else int64.
array encode_vector(const std::vector<uint64_t>& v, int modulus_bits);
/// The inverse of encode_vector; fails on a dtype that does not fit
/// `modulus_bits`, a value at or above 2^modulus_bits or a length other than `count`.
expected<std::vector<uint64_t>> decode_vector(const array& a, int modulus_bits, size_t count);

/// Adds (or, with `negate`, subtracts) the mask that `seed` expands to
/// over v.size() words of `modulus_bits` bits into `v`, word by word mod
/// 2^64 (a multiple of the modulus, so that the sum stays right mod it).
/// `scratch` is reused between calls.
expected<void> apply_mask(const key32& seed, int modulus_bits, bool negate,
                          std::vector<uint64_t>& v, std::vector<uint64_t>& scratch);

/// The bytes a record dict's arrays and config values hold (payload, not
/// framing): what each stage's "bytes" in a report count.
uint64_t payload_bytes(const record_dict& content);

}  // namespace stamen::secagg
