#pragma once

#include <string>

#include "runtime/strategy/strategy_result.hpp"

namespace stamen {

/// A run's result as a JSON document: per round, the train and evaluate
/// counts, failure reasons, wall time and aggregated metrics; server-side
/// evaluations; and the final arrays' names, dtypes and size.
std::string to_json(const strategy_result& result);

/// A metric record as a JSON object, as the result writes it.
std::string to_json(const metric_record& metrics);

}  // namespace stamen
