#pragma once

#include <string>

#include "runtime/strategy/fed_avg.hpp"

namespace stamen {

/// QFedAvg's parameters, with Flower's names and defaults
/// (client_learning_rate has no default in Flower; here it must be set > 0).
struct q_fed_avg_options : fed_avg_options {
  /// Flower's `client_learning_rate`: the clients' lr, L = 1 / it; must be > 0.
  double client_learning_rate = 0;
  /// Flower's `q`: fairness, >= 0 (0: the unweighted mean of the w_k).
  double q = 0.1;
  /// Flower's `train_loss_key`: the reply metric holding F_k, the node's training loss.
  std::string train_loss_key = "train_loss";
};

/// q-FedAvg (Li et al., 2020, "Fair Resource Allocation in Federated
/// Learning"; Flower's QFedAvg). With L = 1 / client_learning_rate, for each
/// reply k with weights w_k and training loss F_k (its `train_loss_key`):
///   Δ_k = L * (w - w_k),  δ_k = (F_k + 1e-10)^q * Δ_k,
///   h_k = q * (F_k + 1e-10)^(q-1) * ||Δ_k||² + L * (F_k + 1e-10)^q,
///   new = w - Σ δ_k / Σ h_k.
/// Σ δ_k and Σ h_k are folded as replies arrive: O(model) memory.
class q_fed_avg : public fed_avg {
 public:
  /// Throws std::invalid_argument unless client_learning_rate > 0 and q >= 0.
  explicit q_fed_avg(q_fed_avg_options opts);

  std::string name() const override { return "QFedAvg"; }
  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;
  std::unique_ptr<train_aggregator> make_train_aggregator(int round,
                                                          const array_record& current) override;

 private:
  q_fed_avg_options q_;
};

}  // namespace stamen
