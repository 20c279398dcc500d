#pragma once

#include "runtime/strategy/fed_avg.hpp"

namespace stamen {

/// FedTrimmedAvg's parameters, with Flower's names and defaults.
struct fed_trimmed_avg_options : fed_avg_options {
  /// The fraction cut from each end of every coordinate's sorted values.
  double beta = 0.2;
};

/// Coordinate-wise trimmed mean (Yin et al., 2018; Flower's FedTrimmedAvg):
/// for every coordinate, the n values sorted, floor(beta * n) of them cut
/// from each end, the rest averaged, unweighted. Keeps every accepted reply
/// until the round ends. beta must lie in [0, 0.5).
class fed_trimmed_avg : public fed_avg {
 public:
  /// Throws std::invalid_argument unless beta lies in [0, 0.5).
  explicit fed_trimmed_avg(fed_trimmed_avg_options opts = {});

  std::string name() const override { return "FedTrimmedAvg"; }
  /// Each node's own update (secure aggregation is refused).
  bool needs_individual_updates() const override { return true; }
  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;
  std::unique_ptr<train_aggregator> make_train_aggregator(int round,
                                                          const array_record& current) override;

 private:
  double beta_;
};

}  // namespace stamen
