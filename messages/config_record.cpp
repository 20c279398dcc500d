#include "messages/config_record.hpp"

#include <stdexcept>

namespace stamen {

namespace {

const config_value& config_at(const config_record& c, const std::string& key) {
  auto* v = c.get(key);
  if (v == nullptr) throw std::invalid_argument("run config has no '" + key + "'");
  return *v;
}

}  // namespace

int64_t config_int(const config_record& c, const std::string& key) {
  if (auto* i = std::get_if<int64_t>(&config_at(c, key))) return *i;
  throw std::invalid_argument("run config '" + key + "' must be an integer");
}

double config_double(const config_record& c, const std::string& key) {
  auto& v = config_at(c, key);
  if (auto* d = std::get_if<double>(&v)) return *d;
  if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  throw std::invalid_argument("run config '" + key + "' must be a number");
}

std::string config_string(const config_record& c, const std::string& key) {
  if (auto* s = std::get_if<std::string>(&config_at(c, key))) return *s;
  throw std::invalid_argument("run config '" + key + "' must be a string");
}

}  // namespace stamen
