#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "messages/ordered_map.hpp"

namespace stamen {

/// Raw bytes inside a ConfigRecord (distinct from text).
using bytes = std::vector<uint8_t>;

/// A ConfigRecord value: a scalar or a single-typed list of scalars.
using config_value =
    std::variant<int64_t, double, bool, std::string, bytes, std::vector<int64_t>,
                 std::vector<double>, std::vector<bool>, std::vector<std::string>,
                 std::vector<bytes>>;

/// Flower's ConfigRecord: named configuration values in insertion order.
using config_record = ordered_map<config_value>;

/// Renders a value the way Flower prints it (strings quoted, lists in brackets).
std::string to_string(const config_value& x);

/// Renders a record as "{'lr': 0.01, 'epochs': 1}".
std::string to_string(const config_record& x);

/// Reads an integer from a run config, for app code (Flower's
/// `int(context.run_config["epochs"])`).
/// Like config_double and config_string, it throws std::invalid_argument
/// naming the key when it is missing or of another type; the runtime turns
/// that into the ServerApp's failure or the ClientApp's error reply.
int64_t config_int(const config_record& c, const std::string& key);
/// Reads a real number from a run config (Flower's
/// `float(context.run_config["lr"])`); an integer value is accepted and
/// converted. Throws std::invalid_argument naming the key when it is missing
/// or neither a double nor an integer.
double config_double(const config_record& c, const std::string& key);
/// Reads a string from a run config (Flower's `str(context.run_config[key])`,
/// without the conversion: the value must already be a string). Throws
/// std::invalid_argument naming the key when it is missing or of another type.
std::string config_string(const config_record& c, const std::string& key);

}  // namespace stamen
