#include "messages/expected.hpp"

#include <ostream>

namespace stamen {

const char* to_string(errc x) {
  switch (x) {
    case errc::none: return "none";
    case errc::invalid_argument: return "invalid_argument";
    case errc::invalid_message: return "invalid_message";
    case errc::decode_failed: return "decode_failed";
    case errc::message_too_large: return "message_too_large";
    case errc::shape_mismatch: return "shape_mismatch";
    case errc::config_error: return "config_error";
    case errc::io_error: return "io_error";
    case errc::runtime_error: return "runtime_error";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& os, errc x) { return os << to_string(x); }

std::string failure::to_string() const {
  return std::string{stamen::to_string(code)} + ": " + what;
}

}  // namespace stamen
