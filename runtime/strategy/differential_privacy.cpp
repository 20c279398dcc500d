#include "runtime/strategy/differential_privacy.hpp"

#include <cmath>

#include "runtime/strategy/array_fold.hpp"
#include "runtime/format.hpp"

namespace stamen {

expected<clipped_update> clip_update(const array_record& model, const array_record& reference,
                                     double clipping_norm) {
  if (auto ok = check_layout(model, reference); !ok) return ok.error();
  double norm2 = 0;
  auto ref = reference.begin();
  for (auto& [k, a] : model) {
    auto& r = (ref++)->second;
    if (!is_floating(a.type())) continue;
    auto x = to_doubles(a), y = to_doubles(r);
    for (size_t j = 0; j < x.size(); ++j) norm2 += (x[j] - y[j]) * (x[j] - y[j]);
  }
  clipped_update out;
  out.norm = std::sqrt(norm2);
  double scale = out.norm > clipping_norm ? clipping_norm / out.norm : 1.0;
  out.clipped = scale < 1.0;
  if (!out.clipped) {
    out.arrays = model;
    return out;
  }
  ref = reference.begin();
  for (auto& [k, a] : model) {
    auto& r = (ref++)->second;
    if (!is_floating(a.type())) {
      out.arrays.insert_or_assign(k, a);
      continue;
    }
    auto x = to_doubles(a), y = to_doubles(r);
    for (size_t j = 0; j < x.size(); ++j) x[j] = y[j] + scale * (x[j] - y[j]);
    out.arrays.insert_or_assign(k, from_doubles(a, x));
  }
  return out;
}

void add_gaussian_noise(array_record& arrays, double stddev, std::mt19937_64& rng) {
  if (stddev <= 0) return;
  std::normal_distribution<double> noise(0.0, stddev);
  array_record out;
  for (auto& [k, a] : arrays) {
    if (!is_floating(a.type())) {
      out.insert_or_assign(k, a);
      continue;
    }
    auto x = to_doubles(a);
    for (auto& v : x) v += noise(rng);
    out.insert_or_assign(k, from_doubles(a, x));
  }
  arrays = std::move(out);
}

double central_noise_stddev(double noise_multiplier, double clipping_norm, double m) {
  return noise_multiplier * clipping_norm / m;
}

expected<adaptive_noise> adaptive_noise_params(double z, double m,
                                               std::optional<double> clipped_count_stddev) {
  adaptive_noise out;
  if (z <= 0) {
    out.clipped_count_stddev = clipped_count_stddev.value_or(0.0);
    return out;
  }
  out.clipped_count_stddev = clipped_count_stddev.value_or(m / 20);
  if (z >= 2 * out.clipped_count_stddev)
    return fail(errc::invalid_argument,
                "noise_multiplier " + format_double("%g", z) +
                    " must be below 2 * clipped_count_stddev = " +
                    format_double("%g", 2 * out.clipped_count_stddev) +
                    " (clipped_count_stddev defaults to num_sampled_clients / 20): raise "
                    "clipped_count_stddev or the number of sampled clients, or lower the noise");
  out.update_noise_multiplier =
      std::pow(std::pow(z, -2) - std::pow(2 * out.clipped_count_stddev, -2), -0.5);
  return out;
}

double next_clipping_norm(double clipping_norm, double lr, double unclipped_fraction,
                          double target_quantile) {
  return clipping_norm * std::exp(-lr * (unclipped_fraction - target_quantile));
}

double local_dp_stddev(double sensitivity, double epsilon, double delta) {
  return sensitivity * std::sqrt(2 * std::log(1.25 / delta)) / epsilon;
}

}  // namespace stamen
