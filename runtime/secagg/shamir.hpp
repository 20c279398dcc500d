#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "messages/config_record.hpp"
#include "messages/expected.hpp"

namespace stamen::secagg {

// Shamir's secret sharing over the prime field of p = 2^61 - 1 (a Mersenne
// prime, so that a product reduces with a shift and an add). A secret of up
// to 255 bytes is cut into 7-byte chunks, each a field element, and each
// chunk is the constant term of its own random polynomial of degree
// threshold - 1; share x holds every polynomial's value at x.

/// The field's modulus, 2^61 - 1.
inline constexpr uint64_t field_prime = (uint64_t{1} << 61) - 1;

/// a * b mod p, for a, b < p.
uint64_t field_mul(uint64_t a, uint64_t b);
/// a + b mod p, for a, b < p.
uint64_t field_add(uint64_t a, uint64_t b);
/// a - b mod p, for a, b < p.
uint64_t field_sub(uint64_t a, uint64_t b);
/// a^-1 mod p, for 0 < a < p.
uint64_t field_inv(uint64_t a);

/// The polynomial with coefficients `coeffs` (constant term first) at `x`.
uint64_t poly_eval(const std::vector<uint64_t>& coeffs, uint64_t x);

/// The value at 0 of the polynomial of degree points.size() - 1 through
/// `points` (x, y) (Lagrange); fails on an empty list, an x of 0, a repeated
/// x or a coordinate outside the field.
expected<uint64_t> interpolate_at_zero(const std::vector<std::pair<uint64_t, uint64_t>>& points);

/// Splits `secret` (1 to 255 bytes) into `num` shares, any `threshold` of
/// which rebuild it (2 <= threshold <= num). Share i (from 1) is, in bytes:
/// i as 4 little-endian bytes, the secret's length as one byte, then one
/// 8-byte little-endian field element per 7-byte chunk. The polynomials'
/// random coefficients come from OpenSSL's CSPRNG.
expected<std::vector<bytes>> create_shares(const bytes& secret, int threshold, int num);

/// Rebuilds a secret from at least `threshold` of its shares (the first
/// `threshold` in the order given are used); fails, saying which, on a share
/// that is malformed, of another secret's length, repeated, or too few.
expected<bytes> combine_shares(const std::vector<bytes>& shares, int threshold);

}  // namespace stamen::secagg
