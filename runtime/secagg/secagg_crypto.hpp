#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "messages/config_record.hpp"
#include "messages/expected.hpp"

namespace stamen::secagg {

// The primitives SecAgg+ needs, all from OpenSSL 3: X25519 key agreement,
// HKDF-SHA256 key derivation, AES-256-GCM for the shares a node sends its
// neighbours through the server, and ChaCha20's keystream as the seeded
// generator of masks. Nothing here is a home-made primitive.

/// A 32-byte symmetric key (a mask seed, an encryption key).
using key32 = std::array<uint8_t, 32>;

/// An X25519 key pair, raw 32-byte encodings (RFC 7748).
struct key_pair {
  bytes private_key;  ///< 32 bytes; never leaves the node except as Shamir shares
  bytes public_key;   ///< 32 bytes
};

/// A fresh X25519 key pair.
expected<key_pair> generate_key_pair();

/// The public key of an X25519 `private_key` (32 bytes): how the server
/// checks that shares rebuilt a dropped node's own key.
expected<bytes> public_key_of(const bytes& private_key);

/// `n` bytes from OpenSSL's CSPRNG.
expected<bytes> random_bytes(size_t n);

/// The key both ends of a pair derive: X25519 of `private_key` and the peer's
/// `public_key`, then HKDF-SHA256 with `label` as its info, so that the mask
/// key and the share key of one pair of keys differ. Fails on a key of the
/// wrong length or a low-order public key (an all-zero shared secret).
expected<key32> agree(const bytes& private_key, const bytes& public_key, std::string_view label);

/// One private key, imported once and agreed with many peers' keys: what
/// agree() does, for a node that agrees with each of its neighbours. In
/// OpenSSL 3 importing an X25519 private key derives its public half, a
/// scalar multiplication as dear as the agreement, so a stage imports each
/// of its keys once rather than once per neighbour.
class key_agreement {
 public:
  /// Fails on a key that is not 32 bytes.
  static expected<key_agreement> make(const bytes& private_key);
  /// Takes `other`'s key; `other` is left empty.
  key_agreement(key_agreement&& other) noexcept;
  /// Takes `other`'s key, freeing this one's.
  key_agreement& operator=(key_agreement&& other) noexcept;
  ~key_agreement();  ///< Frees the key.

  /// agree(private_key, public_key, label), with the key imported once.
  expected<key32> with(const bytes& public_key, std::string_view label) const;

 private:
  explicit key_agreement(void* key) : key_(key) {}
  void* key_ = nullptr;  // EVP_PKEY*, kept out of this header
};

/// AES-256-GCM with a random 12-byte nonce: nonce | ciphertext | 16-byte tag,
/// `aad` authenticated but not encrypted.
expected<bytes> seal(const key32& key, const bytes& plaintext, const bytes& aad);

/// Opens what seal() made under the same key and `aad`; fails on any change.
expected<bytes> open(const key32& key, const bytes& sealed, const bytes& aad);

/// The seeded generator of masks: ChaCha20's keystream under `seed` (zero
/// nonce and counter; each seed is used for one stream only), read as
/// little-endian words.
class mask_stream {
 public:
  /// A stream under `seed`; fails if OpenSSL cannot set ChaCha20 up.
  static expected<mask_stream> make(const key32& seed);
  /// Takes `other`'s cipher state; `other` is left empty.
  mask_stream(mask_stream&& other) noexcept;
  /// Takes `other`'s cipher state, freeing this one's.
  mask_stream& operator=(mask_stream&& other) noexcept;
  ~mask_stream();  ///< Frees the cipher state.

  /// The next `n` words of 32 bits, each masked to `bits` low bits (1..32).
  void next32(uint32_t* out, size_t n, int bits);
  /// The next `n` words of 64 bits, each masked to `bits` low bits (1..64).
  void next64(uint64_t* out, size_t n, int bits);

 private:
  explicit mask_stream(void* ctx) : ctx_(ctx) {}
  void fill(uint8_t* out, size_t n);
  void* ctx_ = nullptr;  // EVP_CIPHER_CTX*, kept out of this header
};

}  // namespace stamen::secagg
