#include "runtime/secagg/shamir.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <set>
#include <string>

namespace stamen::secagg {

namespace {

constexpr size_t chunk_bytes = 7;
constexpr size_t header_bytes = 5;  // x (4 bytes) and the secret's length (1 byte)

uint64_t reduce(unsigned __int128 v) {
  // 2^61 = 1 (mod p): fold the high bits onto the low ones twice.
  uint64_t lo = static_cast<uint64_t>(v) & field_prime;
  uint64_t hi = static_cast<uint64_t>(v >> 61);
  uint64_t r = lo + (hi & field_prime) + (hi >> 61);
  r = (r & field_prime) + (r >> 61);
  return r >= field_prime ? r - field_prime : r;
}

void put_le(bytes& out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t get_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

expected<uint64_t> random_element() {
  for (;;) {
    uint64_t v = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1)
      return fail(errc::runtime_error, "shamir: OpenSSL's RAND_bytes failed");
    v &= field_prime;  // 61 uniform bits; p itself is the one value to reject
    if (v < field_prime) return v;
  }
}

}  // namespace

uint64_t field_mul(uint64_t a, uint64_t b) {
  return reduce(static_cast<unsigned __int128>(a) * b);
}

uint64_t field_add(uint64_t a, uint64_t b) {
  uint64_t r = a + b;
  return r >= field_prime ? r - field_prime : r;
}

uint64_t field_sub(uint64_t a, uint64_t b) { return a >= b ? a - b : a + field_prime - b; }

uint64_t field_inv(uint64_t a) {
  // Fermat: a^(p-2).
  uint64_t result = 1, base = a, e = field_prime - 2;
  while (e) {
    if (e & 1) result = field_mul(result, base);
    base = field_mul(base, base);
    e >>= 1;
  }
  return result;
}

uint64_t poly_eval(const std::vector<uint64_t>& coeffs, uint64_t x) {
  uint64_t acc = 0;
  for (auto it = coeffs.rbegin(); it != coeffs.rend(); ++it) acc = field_add(field_mul(acc, x), *it);
  return acc;
}

expected<uint64_t> interpolate_at_zero(const std::vector<std::pair<uint64_t, uint64_t>>& points) {
  if (points.empty()) return fail(errc::invalid_argument, "shamir: no points to interpolate");
  std::set<uint64_t> xs;
  for (auto& [x, y] : points) {
    if (x == 0 || x >= field_prime || y >= field_prime)
      return fail(errc::invalid_argument,
                  "shamir: point (" + std::to_string(x) + ", " + std::to_string(y) +
                      ") is outside the field or at x = 0");
    if (!xs.insert(x).second)
      return fail(errc::invalid_argument, "shamir: x = " + std::to_string(x) + " given twice");
  }
  // f(0) = sum_j y_j * prod_{m != j} x_m / (x_m - x_j); one inversion per point.
  uint64_t sum = 0;
  for (size_t j = 0; j < points.size(); ++j) {
    uint64_t num = 1, den = 1;
    for (size_t m = 0; m < points.size(); ++m) {
      if (m == j) continue;
      num = field_mul(num, points[m].first);
      den = field_mul(den, field_sub(points[m].first, points[j].first));
    }
    sum = field_add(sum, field_mul(points[j].second, field_mul(num, field_inv(den))));
  }
  return sum;
}

expected<std::vector<bytes>> create_shares(const bytes& secret, int threshold, int num) {
  if (secret.empty() || secret.size() > 255)
    return fail(errc::invalid_argument, "shamir: a secret has 1 to 255 bytes, not " +
                                            std::to_string(secret.size()));
  if (threshold < 2 || num < threshold)
    return fail(errc::invalid_argument, "shamir: need 2 <= threshold <= shares, got threshold " +
                                            std::to_string(threshold) + " of " +
                                            std::to_string(num));
  size_t chunks = (secret.size() + chunk_bytes - 1) / chunk_bytes;
  std::vector<bytes> shares(static_cast<size_t>(num));
  for (int i = 0; i < num; ++i) {
    shares[i].reserve(header_bytes + 8 * chunks);
    put_le(shares[i], static_cast<uint64_t>(i + 1), 4);
    shares[i].push_back(static_cast<uint8_t>(secret.size()));
  }
  std::vector<uint64_t> coeffs(static_cast<size_t>(threshold));
  for (size_t c = 0; c < chunks; ++c) {
    size_t begin = c * chunk_bytes;
    size_t len = std::min(chunk_bytes, secret.size() - begin);
    coeffs[0] = get_le(secret.data() + begin, len);  // < 2^56 < p
    for (size_t k = 1; k < coeffs.size(); ++k) {
      auto r = random_element();
      if (!r) return r.error();
      coeffs[k] = *r;
    }
    for (int i = 0; i < num; ++i)
      put_le(shares[i], poly_eval(coeffs, static_cast<uint64_t>(i + 1)), 8);
  }
  for (auto& k : coeffs) k = 0;
  return shares;
}

expected<bytes> combine_shares(const std::vector<bytes>& shares, int threshold) {
  if (threshold < 2)
    return fail(errc::invalid_argument, "shamir: a threshold is at least 2");
  if (shares.size() < static_cast<size_t>(threshold))
    return fail(errc::invalid_argument, "shamir: " + std::to_string(shares.size()) +
                                            " share(s), fewer than the threshold of " +
                                            std::to_string(threshold));
  size_t length = 0, chunks = 0;
  std::vector<uint64_t> xs;
  for (size_t i = 0; i < static_cast<size_t>(threshold); ++i) {
    auto& s = shares[i];
    if (s.size() < header_bytes)
      return fail(errc::invalid_message, "shamir: share " + std::to_string(i) + " is truncated");
    size_t len = s[4];
    size_t n = (len + chunk_bytes - 1) / chunk_bytes;
    if (len == 0 || s.size() != header_bytes + 8 * n)
      return fail(errc::invalid_message, "shamir: share " + std::to_string(i) + " has " +
                                             std::to_string(s.size()) +
                                             " bytes, not what its header says");
    if (i == 0) {
      length = len, chunks = n;
    } else if (len != length) {
      return fail(errc::invalid_message,
                  "shamir: share " + std::to_string(i) + " is of a secret of another length");
    }
    xs.push_back(get_le(s.data(), 4));
  }
  bytes secret;
  secret.reserve(length);
  std::vector<std::pair<uint64_t, uint64_t>> points(xs.size());
  for (size_t c = 0; c < chunks; ++c) {
    for (size_t i = 0; i < xs.size(); ++i)
      points[i] = {xs[i], get_le(shares[i].data() + header_bytes + 8 * c, 8)};
    auto v = interpolate_at_zero(points);
    if (!v) return v.error();
    size_t len = std::min(chunk_bytes, length - c * chunk_bytes);
    // A chunk is below 2^(8 len): anything else means the shares are not of one secret.
    if (len < 8 && (*v >> (8 * len)) != 0)
      return fail(errc::invalid_message, "shamir: the shares do not belong to one secret");
    for (size_t b = 0; b < len; ++b) secret.push_back(static_cast<uint8_t>(*v >> (8 * b)));
  }
  return secret;
}

}  // namespace stamen::secagg
