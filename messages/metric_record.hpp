#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "messages/ordered_map.hpp"

namespace stamen {

/// A MetricRecord value: int64 or double, or a list of one of those.
using metric_value = std::variant<int64_t, double, std::vector<int64_t>, std::vector<double>>;

/// Flower's MetricRecord: named metrics in insertion order.
using metric_record = ordered_map<metric_value>;

/// Stores a scalar metric in `out` as a double; false for lists.
bool metric_as_double(const metric_value& x, double& out);

/// Renders "{'train_loss': 0.5432, 'num-examples': 4800}" as Flower logs it.
std::string to_string(const metric_record& x);

}  // namespace stamen
