#pragma once

#include <string>

namespace stamen {

/// One number formatted with a printf conversion ("%.2f", "%g", "%.4e"), as
/// log lines and error messages show it.
std::string format_double(const char* conversion, double x);

}  // namespace stamen
