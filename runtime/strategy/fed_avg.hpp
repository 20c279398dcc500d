#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "runtime/strategy/array_fold.hpp"
#include "runtime/strategy/strategy.hpp"

namespace stamen {

/// Combines the metric records of the accepted replies into one (Flower's
/// `train_metrics_aggr_fn` / `evaluate_metrics_aggr_fn`).
using metric_aggregation_fn =
    std::function<metric_record(const std::vector<metric_record>&, const std::string& weight_key)>;

/// Flower's default: the weighted average of every key but the weight, by the
/// weight key; lists are averaged element-wise. Values become doubles.
metric_record weighted_average(const std::vector<metric_record>& records,
                               const std::string& weight_key);

/// FedAvg's parameters, with Flower's names and defaults.
struct fed_avg_options {
  /// Flower's `fraction_train`: the share of connected nodes sampled for
  /// training each round, in [0, 1]; 0 skips training.
  double fraction_train = 1.0;
  /// Flower's `fraction_evaluate`: as fraction_train, for evaluation.
  double fraction_evaluate = 1.0;
  /// Flower's `min_train_nodes`: the fewest nodes sampled for training, and
  /// the fewest valid train replies for a round's aggregate to be used.
  size_t min_train_nodes = 2;
  /// Flower's `min_evaluate_nodes`: the fewest nodes sampled for evaluation.
  size_t min_evaluate_nodes = 2;
  /// Flower's `min_available_nodes`: how many nodes must be connected before
  /// a phase samples (see min_available_timeout_s).
  size_t min_available_nodes = 2;
  /// Flower's `weighted_by_key`: the reply MetricRecord entry that weighs a
  /// node's update and metrics (its number of examples); it must be positive.
  std::string weighted_by_key = "num-examples";
  /// Flower's `arrayrecord_key`: the name of the ArrayRecord in instructions
  /// and replies.
  std::string arrayrecord_key = "arrays";
  /// Flower's `configrecord_key`: the name of the ConfigRecord in instructions.
  std::string configrecord_key = "config";
  /// Flower's `train_metrics_aggr_fn`; empty: no train metrics are aggregated.
  metric_aggregation_fn train_metrics_aggr_fn = weighted_average;
  /// Flower's `evaluate_metrics_aggr_fn`; empty: no evaluate metrics.
  metric_aggregation_fn evaluate_metrics_aggr_fn = weighted_average;
  /// How long sampling waits for min_available_nodes (Flower waits forever).
  double min_available_timeout_s = 60;
  /// Flower's accept_failures: when false, a round with any failure keeps the
  /// previous global arrays.
  bool accept_failures = true;
  /// As FaultTolerantFedAvg's min_completion_rate_fit: the share of sampled
  /// nodes whose train reply must be valid for the aggregate to be used.
  double min_completion_rate = 0;
  /// Seed of node sampling; unset draws one from std::random_device.
  std::optional<uint64_t> seed;
};

/// Federated Averaging. Train replies are folded into a running weighted sum
/// (in double) as they arrive, so memory stays O(model) whatever the number of
/// clients. Replies with other keys, dtypes or shapes than the global arrays,
/// a missing or non-positive weight, or a NaN/Inf value are rejected.
class fed_avg : public strategy {
 public:
  /// Throws std::invalid_argument when a fraction lies outside [0, 1].
  explicit fed_avg(fed_avg_options opts = {});

  std::string name() const override { return "FedAvg"; }
  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;

  std::vector<message> configure_train(int round, const array_record& arrays,
                                       config_record config, grid& g) override;
  std::unique_ptr<train_aggregator> make_train_aggregator(int round,
                                                          const array_record& current) override;
  std::vector<message> configure_evaluate(int round, const array_record& arrays,
                                          config_record config, grid& g) override;
  std::unique_ptr<evaluate_aggregator> make_evaluate_aggregator(int round) override;

  /// Fewer valid replies than min_train_nodes, a failure when failures are not
  /// accepted, or a completion rate under the minimum keep the previous arrays.
  std::optional<std::string> reject_train_round(const phase_report& report) const override;

  /// The options the strategy was built with.
  const fed_avg_options& options() const { return opts_; }

  void save_state(record_dict& out) const override;
  expected<void> restore_state(const record_dict& in) override;

 private:
  std::vector<message> configure(run_phase phase, double fraction,
                                 size_t min_nodes, int round, const array_record* arrays,
                                 config_record config, grid& g);

  fed_avg_options opts_;
  std::mt19937_64 rng_;
};

/// Adds a strategy's own settings to FedAvg's summary tree, after its first
/// line, as Flower's subclasses do: "├──> <title>:" then one line per item.
std::vector<std::string> insert_settings(std::vector<std::string> summary,
                                         const std::string& title,
                                         const std::vector<std::string>& items);

}  // namespace stamen
