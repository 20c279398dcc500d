#pragma once

#include "runtime/strategy/fed_avg.hpp"

namespace stamen {

/// Bulyan's parameters, with Flower's names and defaults.
struct bulyan_options : fed_avg_options {
  /// Flower's `num_malicious_nodes`: f, the number of Byzantine nodes to withstand.
  size_t num_malicious_nodes = 0;
};

/// Bulyan (El Mhamdi et al., 2018; Flower's Bulyan), over n >= 4f + 3 valid
/// replies: theta = n - 2f updates are selected by MultiKrum scores (as
/// Flower's default selection rule does, in one pass), then every coordinate
/// is the mean of the beta = theta - 2f selected values closest to their
/// median. A round with fewer valid replies keeps the previous arrays. Keeps
/// every accepted reply until the round ends.
class bulyan : public fed_avg {
 public:
  /// Throws std::invalid_argument when a fraction lies outside [0, 1].
  explicit bulyan(bulyan_options opts = {});

  std::string name() const override { return "Bulyan"; }
  /// Each node's own update (secure aggregation is refused).
  bool needs_individual_updates() const override { return true; }
  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;
  std::unique_ptr<train_aggregator> make_train_aggregator(int round,
                                                          const array_record& current) override;
  std::optional<std::string> reject_train_round(const phase_report& report) const override;

 private:
  size_t f_;
};

}  // namespace stamen
