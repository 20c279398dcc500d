// Printing of config and metric records, in the style of Flower's logs.
#include <cmath>
#include <cstdio>

#include "messages/config_record.hpp"
#include "messages/metric_record.hpp"

namespace stamen {

namespace {

std::string fmt_double(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", x);
  std::string s = buf;
  // Python prints floats with a dot even when they are integral.
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

struct printer {
  std::string operator()(int64_t x) const { return std::to_string(x); }
  std::string operator()(double x) const { return fmt_double(x); }
  std::string operator()(bool x) const { return x ? "True" : "False"; }
  std::string operator()(const std::string& x) const { return quote(x); }
  std::string operator()(const bytes& x) const {
    return "b<" + std::to_string(x.size()) + " bytes>";
  }
  template <class T>
  std::string operator()(const std::vector<T>& xs) const {
    std::string out = "[";
    for (size_t i = 0; i < xs.size(); ++i) {
      if (i > 0) out += ", ";
      if constexpr (std::is_same_v<T, bool>)
        out += (*this)(static_cast<bool>(xs[i]));
      else
        out += (*this)(xs[i]);
    }
    return out + "]";
  }
};

template <class Map>
std::string print_map(const Map& m) {
  std::string out = "{";
  bool first = true;
  for (auto& [k, v] : m) {
    if (!first) out += ", ";
    first = false;
    out += quote(k) + ": " + std::visit(printer{}, v);
  }
  return out + "}";
}

}  // namespace

std::string to_string(const config_value& x) { return std::visit(printer{}, x); }

std::string to_string(const config_record& x) { return print_map(x); }

std::string to_string(const metric_record& x) { return print_map(x); }

bool metric_as_double(const metric_value& x, double& out) {
  if (auto* i = std::get_if<int64_t>(&x)) {
    out = static_cast<double>(*i);
    return true;
  }
  if (auto* d = std::get_if<double>(&x)) {
    out = *d;
    return true;
  }
  return false;
}

}  // namespace stamen
