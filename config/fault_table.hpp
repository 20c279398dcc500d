#pragma once

// Parsing of a [faults] table; private to config/ (it exposes toml11).

#include <toml.hpp>

#include "messages/expected.hpp"
#include "runtime/fault/fault_plan.hpp"

namespace stamen {

/// Parses the value of a [faults] table. Errors name the line and the key.
expected<fault_plan> parse_fault_table(const toml::value& faults);

}  // namespace stamen
