#pragma once

#include "runtime/strategy/fed_avg.hpp"

namespace stamen {

/// FedProx's parameters, with Flower's names and defaults.
struct fed_prox_options : fed_avg_options {
  /// Flower's `proximal_mu`: the proximal term's weight mu, >= 0, sent as
  /// `proximal-mu` (0: FedAvg).
  double proximal_mu = 0.0;
};

/// FedProx (Li et al., 2020; Flower's FedProx): FedAvg on the server, with
/// `proximal-mu` sent in every train ConfigRecord so that clients add
/// (mu / 2) * ||w - w_global||^2 to their local loss. Streams as FedAvg does.
class fed_prox : public fed_avg {
 public:
  /// Throws std::invalid_argument when proximal_mu is negative.
  explicit fed_prox(fed_prox_options opts = {});

  std::string name() const override { return "FedProx"; }
  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;
  std::vector<message> configure_train(int round, const array_record& arrays,
                                       config_record config, grid& g) override;

 private:
  double mu_;
};

}  // namespace stamen
