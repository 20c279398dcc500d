#pragma once

#include <vector>

#include "runtime/strategy/fed_avg.hpp"

namespace stamen {

/// FedAvgM's parameters, with Flower's names and defaults.
struct fed_avgm_options : fed_avg_options {
  /// Flower's `server_learning_rate`: the step on v (1.0: a full step).
  double server_learning_rate = 1.0;
  double server_momentum = 0.0;  ///< Flower's `server_momentum`: v's decay (0: no momentum)
};

/// Federated Averaging with server momentum (Hsu et al., 2019; Flower's
/// FedAvgM). Replies are folded as FedAvg folds them (O(model) memory); on
/// an accepted round, with d = current - aggregate (the pseudo-gradient),
///   v = d in the first round, v = momentum * v + d after (with momentum > 0),
///   new = current - server_learning_rate * v   (v = d without momentum).
/// With the defaults (1.0, 0.0) it is FedAvg. Floating-point arrays are
/// stepped in double; other dtypes (counters) take the FedAvg aggregate.
class fed_avgm : public fed_avg {
 public:
  /// Throws std::invalid_argument when a fraction lies outside [0, 1].
  explicit fed_avgm(fed_avgm_options opts = {});

  std::string name() const override { return "FedAvgM"; }
  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;
  array_record update_global(int round, const array_record& current,
                             array_record aggregated) override;

  void save_state(record_dict& out) const override;
  expected<void> restore_state(const record_dict& in) override;

 private:
  double server_learning_rate_;
  double server_momentum_;
  /// Per array of the model, in record order; empty until the first step.
  std::vector<std::vector<double>> momentum_;
};

}  // namespace stamen
