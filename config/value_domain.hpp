#pragma once

#include <optional>
#include <string>
#include <vector>

#include "messages/config_record.hpp"
#include "messages/expected.hpp"

namespace stamen {

/// The values a run-config key accepts, declared in `stamen.toml` beside its
/// default: `batch-size = { default = 32, min = 1 }`,
/// `lr = { default = 0.01, min = 0.0, exclusive-min = true }`,
/// `dataset = { default = "mnist", choices = ["mnist", "cifar10"] }`.
/// Bounds apply to numbers (each element of a number list); choices to any
/// scalar (each element of a list). A key declared with a plain value has no
/// domain beyond its type. `key = { optional = true, min = 0.0 }` declares a
/// key without a default: absent from the run config unless given, so that
/// the app applies its own default (a strategy's, say) when it is not.
struct value_domain {
  std::optional<double> min;
  std::optional<double> max;
  bool exclusive_min = false;
  bool exclusive_max = false;
  std::vector<config_value> choices;  ///< empty: any value of the type
  bool optional = false;              ///< declared without a default

  bool empty() const { return !min && !max && choices.empty() && !optional; }
};

/// "an integer >= 1", "a float > 0 and <= 1", "one of 'iid', 'dirichlet'".
std::string describe(const value_domain& d);

/// Checks `value` of run-config key `key`; the failure names the key, the
/// value and the domain, e.g. "run config key 'batch-size' = 0 is out of its
/// domain: >= 1".
expected<void> check_value(const std::string& key, const config_value& value,
                           const value_domain& d);

}  // namespace stamen
