#include "runtime/format.hpp"

#include <cstdio>

namespace stamen {

std::string format_double(const char* conversion, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, conversion, x);
  return buf;
}

}  // namespace stamen
