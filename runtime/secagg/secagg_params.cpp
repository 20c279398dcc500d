#include "runtime/secagg/secagg_params.hpp"

#include <cmath>
#include <set>

#include "runtime/format.hpp"

namespace stamen::secagg {

namespace {

failure bad(const std::string& what) {
  return fail(errc::config_error, "secure aggregation: " + what);
}

std::string show(double v) { return format_double("%g", v); }

}  // namespace

expected<secagg_plus_options> validate(secagg_plus_options o) {
  auto& s = o.num_shares;
  if (!s.fraction) {
    if (s.value != std::floor(s.value)) return bad("num-shares must be a whole number");
    if (s.value == 1) {
      s = {1.0, true};
    } else if (s.value <= 2) {
      return bad("num-shares as an integer must be greater than 2, not " + show(s.value));
    }
  } else if (!(s.value > 0 && s.value <= 1)) {
    return bad("num-shares as a fraction must be in (0, 1], not " + show(s.value));
  }
  auto& t = o.reconstruction_threshold;
  if (!t.fraction) {
    if (t.value != std::floor(t.value))
      return bad("reconstruction-threshold must be a whole number");
    if (t.value == 1) {
      t = {1.0, true};
    } else if (t.value < 2) {
      return bad("reconstruction-threshold as an integer must be at least 2, not " + show(t.value));
    } else if (!s.fraction && t.value >= s.value) {
      return bad("reconstruction-threshold (" + show(t.value) + ") must be less than num-shares (" +
                 show(s.value) + ")");
    }
  } else if (!(t.value > 0 && t.value <= 1)) {
    return bad("reconstruction-threshold as a fraction must be in (0, 1], not " + show(t.value));
  }
  if (!(o.max_weight > 0) || !std::isfinite(o.max_weight))
    return bad("max-weight must be greater than 0, not " + show(o.max_weight));
  if (!(o.clipping_range > 0) || !std::isfinite(o.clipping_range))
    return bad("clipping-range must be greater than 0, not " + show(o.clipping_range));
  if (o.quantization_range == 0) return bad("quantization-range must be greater than 0");
  if (o.modulus_range <= o.quantization_range)
    return bad("modulus-range (" + std::to_string(o.modulus_range) +
               ") must be greater than quantization-range (" +
               std::to_string(o.quantization_range) + ")");
  if ((o.modulus_range & (o.modulus_range - 1)) != 0)
    return bad("modulus-range must be a power of 2, not " + std::to_string(o.modulus_range));
  if (o.modulus_range > (uint64_t{1} << 62))
    return bad("modulus-range must be at most 2^62, not " + std::to_string(o.modulus_range));
  if (!(o.timeout >= 0) || !std::isfinite(o.timeout))
    return bad("timeout must be 0 (the round's) or a number of seconds, not " + show(o.timeout));
  return o;
}

expected<secagg_plus_options> options_from_config(const config_record& c) {
  secagg_plus_options o;
  auto count = [&](const char* key, count_or_fraction& out) -> expected<void> {
    auto* v = c.get(key);
    if (!v) return {};
    if (auto* i = std::get_if<int64_t>(v)) {
      out = {static_cast<double>(*i), false};
    } else if (auto* d = std::get_if<double>(v)) {
      out = {*d, true};
    } else {
      return bad(std::string(key) + " must be an integer (a count) or a float (a fraction), not " +
                 to_string(*v));
    }
    return {};
  };
  auto real = [&](const char* key, double& out) -> expected<void> {
    auto* v = c.get(key);
    if (!v) return {};
    if (auto* i = std::get_if<int64_t>(v)) {
      out = static_cast<double>(*i);
    } else if (auto* d = std::get_if<double>(v)) {
      out = *d;
    } else {
      return bad(std::string(key) + " must be a number, not " + to_string(*v));
    }
    return {};
  };
  auto whole = [&](const char* key, uint64_t& out) -> expected<void> {
    auto* v = c.get(key);
    if (!v) return {};
    auto* i = std::get_if<int64_t>(v);
    if (!i || *i <= 0) return bad(std::string(key) + " must be a positive integer, not " + to_string(*v));
    out = static_cast<uint64_t>(*i);
    return {};
  };
  for (auto ok : {count("num-shares", o.num_shares),
                  count("reconstruction-threshold", o.reconstruction_threshold),
                  real("max-weight", o.max_weight), real("clipping-range", o.clipping_range),
                  whole("quantization-range", o.quantization_range),
                  whole("modulus-range", o.modulus_range), real("timeout", o.timeout)})
    if (!ok) return ok.error();
  return validate(o);
}

expected<round_params> resolve(const secagg_plus_options& o, size_t sampled) {
  if (sampled < 2)
    return bad("SecAgg+ needs at least 2 sampled nodes, got " + std::to_string(sampled));
  auto n = static_cast<int64_t>(sampled);
  round_params p;
  int64_t s = 0;
  if (o.num_shares.fraction) {
    s = std::llround(o.num_shares.value * static_cast<double>(n));
    if (s < n && s % 2 == 0) ++s;  // a ring of neighbours on both sides is odd
    if (s <= 2) s = n;
  } else {
    s = static_cast<int64_t>(o.num_shares.value);
    if (s < n && s % 2 == 0) ++s;
  }
  s = std::min(s, n);
  p.num_shares = static_cast<int>(s);
  if (o.reconstruction_threshold.fraction) {
    p.threshold = static_cast<int>(
        std::max<int64_t>(std::llround(o.reconstruction_threshold.value * static_cast<double>(s)), 2));
  } else {
    p.threshold = static_cast<int>(o.reconstruction_threshold.value);
  }
  if (p.threshold > p.num_shares)
    return bad("reconstruction-threshold " + std::to_string(p.threshold) + " is larger than the " +
               std::to_string(p.num_shares) + " shares of the " + std::to_string(n) +
               " sampled nodes");
  // The sum of n values in [0, Q] (and of n weights in [0, Q]) must stay below M.
  auto q = static_cast<unsigned __int128>(o.quantization_range);
  if (q * static_cast<unsigned __int128>(n) >= o.modulus_range)
    return bad(std::to_string(n) + " sampled nodes times quantization-range " +
               std::to_string(o.quantization_range) + " reach modulus-range " +
               std::to_string(o.modulus_range) +
               ": the sum would wrap around; raise modulus-range or lower quantization-range");
  return p;
}

int modulus_bits(const secagg_plus_options& o) {
  int b = 0;
  while ((uint64_t{1} << b) < o.modulus_range) ++b;
  return b;
}

}  // namespace stamen::secagg
