#include "runtime/secagg/quantization.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace stamen::secagg {

namespace {

// splitmix64: the coin flips of stochastic rounding need speed, not secrecy
// (they are added before the masks, which hide them).
uint64_t next(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::string layout_of(const array_record& arrays) {
  std::string out;
  for (auto& [name, a] : arrays) {
    if (!out.empty()) out += ';';
    out += name + ':' + a.describe();
  }
  return out;
}

expected<std::vector<double>> flatten(const array_record& arrays) {
  size_t total = 0;
  for (auto& [name, a] : arrays) {
    if (a.type() != dtype::float32 && a.type() != dtype::float64)
      return fail(errc::invalid_argument, "secure aggregation: array '" + name + "' is " +
                                              a.describe() +
                                              "; only float32 and float64 arrays are summed");
    total += static_cast<size_t>(a.numel());
  }
  std::vector<double> out;
  out.reserve(total);
  for (auto& [name, a] : arrays) {
    size_t n = static_cast<size_t>(a.numel());
    if (a.type() == dtype::float32) {
      const float* p = reinterpret_cast<const float*>(a.data());
      for (size_t i = 0; i < n; ++i) out.push_back(p[i]);
    } else {
      const double* p = reinterpret_cast<const double*>(a.data());
      out.insert(out.end(), p, p + n);
    }
  }
  return out;
}

expected<array_record> unflatten(const std::vector<double>& values, const array_record& like) {
  size_t total = 0;
  for (auto& [name, a] : like) total += static_cast<size_t>(a.numel());
  if (total != values.size())
    return fail(errc::shape_mismatch, "secure aggregation: " + std::to_string(values.size()) +
                                          " values for arrays of " + std::to_string(total));
  array_record out;
  size_t at = 0;
  for (auto& [name, a] : like) {
    size_t n = static_cast<size_t>(a.numel());
    if (a.type() == dtype::float32) {
      std::vector<float> v(values.begin() + at, values.begin() + at + n);
      out.insert_or_assign(name, array::from_values(dtype::float32, a.shape(), v));
    } else {
      std::vector<double> v(values.begin() + at, values.begin() + at + n);
      out.insert_or_assign(name, array::from_values(dtype::float64, a.shape(), v));
    }
    at += n;
  }
  return out;
}

uint64_t quantized_weight(double weight, double max_weight, uint64_t q_range) {
  double r = std::max(weight, 0.0) / max_weight * static_cast<double>(q_range);
  return static_cast<uint64_t>(std::llround(r));
}

void quantize(const std::vector<double>& x, uint64_t q, double c, uint64_t q_range, uint64_t seed,
              uint64_t* out) {
  const double Q = static_cast<double>(q_range);
  const double dq = static_cast<double>(q) / Q;
  const double scale = Q / (2 * c);
  uint64_t s = seed;
  for (size_t i = 0; i < x.size(); ++i) {
    double v = std::clamp(x[i] * dq, -c, c);
    if (std::isnan(v)) v = 0;  // NaN is refused before this; never let it reach a mask
    double y = (v + c) * scale;
    double f = std::floor(y);
    // Round up with probability y - f: E[out] = y.
    double u = static_cast<double>(next(s) >> 11) * 0x1.0p-53;
    uint64_t r = static_cast<uint64_t>(f) + (u < y - f ? 1 : 0);
    out[i] = std::min(r, q_range);
  }
}

std::vector<double> dequantize_mean(const uint64_t* sum, size_t count, size_t n, uint64_t total_q,
                                    double c, uint64_t q_range) {
  const double Q = static_cast<double>(q_range);
  const double step = 2 * c / Q;
  const double offset = static_cast<double>(n) * c;
  const double inv = Q / static_cast<double>(total_q);
  std::vector<double> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = (static_cast<double>(sum[i]) * step - offset) * inv;
  return out;
}

}  // namespace stamen::secagg
