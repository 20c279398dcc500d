#pragma once

#include "runtime/strategy/fed_avg.hpp"

namespace stamen {

/// Coordinate-wise median of the accepted updates (Yin et al., 2018;
/// Flower's FedMedian): for every coordinate, the middle value over the
/// replies (the mean of the two middle values when their number is even),
/// unweighted. Keeps every accepted reply until the round ends.
class fed_median : public fed_avg {
 public:
  /// FedAvg's options; every reply still needs a weight, which weighs its
  /// metrics, not its arrays.
  explicit fed_median(fed_avg_options opts = {}) : fed_avg(std::move(opts)) {}

  std::string name() const override { return "FedMedian"; }
  /// Each node's own update (secure aggregation is refused).
  bool needs_individual_updates() const override { return true; }
  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;
  std::unique_ptr<train_aggregator> make_train_aggregator(int round,
                                                          const array_record& current) override;
};

/// The median of xs (reordered); the mean of the two middle values for an even count.
double median_of(std::vector<double>& xs);

}  // namespace stamen
