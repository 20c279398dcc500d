#include "config/value_domain.hpp"

#include "runtime/format.hpp"

namespace stamen {

namespace {

bool in_bounds(double x, const value_domain& d) {
  if (d.min && (d.exclusive_min ? !(x > *d.min) : !(x >= *d.min))) return false;
  if (d.max && (d.exclusive_max ? !(x < *d.max) : !(x <= *d.max))) return false;
  return true;
}

// The numbers a value holds (itself, or each element of a number list).
std::optional<std::vector<double>> numbers_of(const config_value& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return std::vector<double>{static_cast<double>(*i)};
  if (auto* f = std::get_if<double>(&v)) return std::vector<double>{*f};
  if (auto* is = std::get_if<std::vector<int64_t>>(&v))
    return std::vector<double>(is->begin(), is->end());
  if (auto* fs = std::get_if<std::vector<double>>(&v)) return *fs;
  return std::nullopt;
}

// The scalars a value holds, each as a config_value of its own.
std::vector<config_value> scalars_of(const config_value& v) {
  return std::visit(
      [](auto& x) -> std::vector<config_value> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::vector<int64_t>> ||
                      std::is_same_v<T, std::vector<double>> ||
                      std::is_same_v<T, std::vector<bool>> ||
                      std::is_same_v<T, std::vector<std::string>>) {
          std::vector<config_value> out;
          for (auto&& e : x) out.push_back(config_value{static_cast<typename T::value_type>(e)});
          return out;
        } else {
          return {config_value{x}};
        }
      },
      v);
}

bool same_scalar(const config_value& a, const config_value& b) {
  if (a == b) return true;
  // An integer choice matches the same float value and the other way round.
  auto na = numbers_of(a), nb = numbers_of(b);
  return na && nb && na->size() == 1 && nb->size() == 1 && na->front() == nb->front();
}

}  // namespace

std::string describe(const value_domain& d) {
  std::string out;
  if (d.min) out += (d.exclusive_min ? "> " : ">= ") + format_double("%g", *d.min);
  if (d.max) out += (out.empty() ? "" : " and ") + std::string{d.exclusive_max ? "< " : "<= "} +
                    format_double("%g", *d.max);
  if (!d.choices.empty()) {
    out += out.empty() ? "one of " : " and one of ";
    for (size_t i = 0; i < d.choices.size(); ++i)
      out += (i == 0 ? "" : ", ") + to_string(d.choices[i]);
  }
  return out.empty() ? "any value" : out;
}

expected<void> check_value(const std::string& key, const config_value& value,
                           const value_domain& d) {
  auto out_of_domain = [&] {
    return fail(errc::config_error, "run config key '" + key + "' = " + to_string(value) +
                                        " is out of its domain: " + describe(d));
  };
  if (d.min || d.max) {
    auto xs = numbers_of(value);
    if (!xs) return out_of_domain();
    for (double x : *xs)
      if (!in_bounds(x, d)) return out_of_domain();
  }
  if (!d.choices.empty())
    for (auto& x : scalars_of(value)) {
      bool listed = false;
      for (auto& c : d.choices) listed = listed || same_scalar(x, c);
      if (!listed) return out_of_domain();
    }
  return {};
}

}  // namespace stamen
