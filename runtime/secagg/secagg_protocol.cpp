#include "runtime/secagg/secagg_protocol.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace stamen::secagg {

namespace {

void put_le(bytes& out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t get_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

}  // namespace

bytes encode_bundle(const share_bundle& b) {
  bytes out;
  out.reserve(20 + b.seed_share.size() + b.key_share.size());
  put_le(out, b.src, 8);
  put_le(out, b.dst, 8);
  put_le(out, b.seed_share.size(), 4);
  out.insert(out.end(), b.seed_share.begin(), b.seed_share.end());
  out.insert(out.end(), b.key_share.begin(), b.key_share.end());
  return out;
}

expected<share_bundle> decode_bundle(const bytes& p) {
  if (p.size() < 20)
    return fail(errc::invalid_message, "secagg+: a share bundle of " + std::to_string(p.size()) +
                                           " bytes is truncated");
  share_bundle b;
  b.src = get_le(p.data(), 8);
  b.dst = get_le(p.data() + 8, 8);
  uint64_t n = get_le(p.data() + 16, 4);
  if (n > p.size() - 20)
    return fail(errc::invalid_message, "secagg+: a share bundle's seed share overruns it");
  b.seed_share.assign(p.begin() + 20, p.begin() + 20 + static_cast<std::ptrdiff_t>(n));
  b.key_share.assign(p.begin() + 20 + static_cast<std::ptrdiff_t>(n), p.end());
  return b;
}

bytes share_aad(int64_t round, uint64_t src, uint64_t dst) {
  bytes out{'s', 'e', 'c', 'a', 'g', 'g', '+'};
  put_le(out, static_cast<uint64_t>(round), 8);
  put_le(out, src, 8);
  put_le(out, dst, 8);
  return out;
}

array encode_vector(const std::vector<uint64_t>& v, int modulus_bits) {
  auto n = static_cast<int64_t>(v.size());
  if (modulus_bits <= 32) {
    std::vector<int32_t> w(v.size());
    for (size_t i = 0; i < v.size(); ++i) w[i] = static_cast<int32_t>(static_cast<uint32_t>(v[i]));
    return array::from_values(dtype::int32, {n}, w);
  }
  std::vector<int64_t> w(v.begin(), v.end());
  return array::from_values(dtype::int64, {n}, w);
}

expected<std::vector<uint64_t>> decode_vector(const array& a, int modulus_bits, size_t count) {
  auto want = modulus_bits <= 32 ? dtype::int32 : dtype::int64;
  if (a.type() != want || a.shape().size() != 1 || static_cast<size_t>(a.numel()) != count)
    return fail(errc::shape_mismatch, "secagg+: a masked vector is " + a.describe() + ", not " +
                                          std::string(to_string(want)) + "[" + std::to_string(count) + "]");
  std::vector<uint64_t> out(count);
  uint64_t limit_mask = modulus_bits >= 64 ? 0 : ~((uint64_t{1} << modulus_bits) - 1);
  if (want == dtype::int32) {
    const auto* p = reinterpret_cast<const uint32_t*>(a.data());
    for (size_t i = 0; i < count; ++i) out[i] = p[i];
  } else {
    const auto* p = reinterpret_cast<const uint64_t*>(a.data());
    for (size_t i = 0; i < count; ++i) out[i] = p[i];
  }
  for (size_t i = 0; i < count; ++i)
    if (out[i] & limit_mask)
      return fail(errc::invalid_message, "secagg+: a masked vector's value " +
                                             std::to_string(out[i]) + " at " + std::to_string(i) +
                                             " is outside the modulus");
  return out;
}

expected<void> apply_mask(const key32& seed, int bits, bool negate, std::vector<uint64_t>& v,
                          std::vector<uint64_t>& scratch) {
  auto st = mask_stream::make(seed);
  if (!st) return st.error();
  // The keystream in blocks that stay in L1, added as they come: one pass
  // over v, no buffer of v's size.
  constexpr size_t block = 2048;
  scratch.resize(block);
  auto add = [&](auto* w, size_t at, size_t m) {
    uint64_t* x = v.data() + at;
    if (negate)
      for (size_t i = 0; i < m; ++i) x[i] -= w[i];
    else
      for (size_t i = 0; i < m; ++i) x[i] += w[i];
  };
  for (size_t at = 0; at < v.size(); at += block) {
    size_t m = std::min(block, v.size() - at);
    if (bits <= 32) {
      // Half the keystream: 32-bit words.
      auto* w = reinterpret_cast<uint32_t*>(scratch.data());
      st->next32(w, m, bits);
      add(w, at, m);
    } else {
      st->next64(scratch.data(), m, bits);
      add(scratch.data(), at, m);
    }
  }
  return {};
}

uint64_t payload_bytes(const record_dict& content) {
  uint64_t n = 0;
  for (auto& [name, rec] : content) {
    if (auto* a = std::get_if<array_record>(&rec)) {
      n += a->count_bytes();
    } else if (auto* c = std::get_if<config_record>(&rec)) {
      for (auto& [key, v] : *c)
        std::visit(
            [&](auto& x) {
              using T = std::decay_t<decltype(x)>;
              if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, bytes>) {
                n += x.size();
              } else if constexpr (std::is_same_v<T, std::vector<bytes>> ||
                                   std::is_same_v<T, std::vector<std::string>>) {
                for (auto& e : x) n += e.size();
              } else if constexpr (std::is_same_v<T, std::vector<int64_t>> ||
                                   std::is_same_v<T, std::vector<double>>) {
                n += 8 * x.size();
              } else if constexpr (std::is_same_v<T, std::vector<bool>>) {
                n += x.size();
              } else {
                n += 8;
              }
            },
            v);
    } else if (auto* m = std::get_if<metric_record>(&rec)) {
      n += 8 * m->size();
    }
  }
  return n;
}

}  // namespace stamen::secagg
