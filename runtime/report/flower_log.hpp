#pragma once

#include "runtime/logger.hpp"
#include "runtime/run_events.hpp"

namespace stamen {

/// Writes a run's events as Flower's log does: the strategy's summary tree,
/// "[ROUND r/N]", the sampled and received counts with each failure's reason,
/// the aggregated metrics, and the final results block.
class flower_log : public run_observer {
 public:
  /// Writes to `log` (which decides the stream and the level).
  explicit flower_log(logger log) : log_(std::move(log)) {}

  void on_start(const std::string& strategy, int num_rounds,
                const std::vector<std::string>& summary) override;
  void on_round_start(int round, int num_rounds) override;
  void on_sampled(int round, run_phase phase, size_t sampled, size_t available) override;
  void on_phase_end(run_phase phase, const phase_report& report) override;
  void on_arrays_kept(int round, const std::string& why) override;
  void on_aggregated(int round, run_phase phase, const metric_record& metrics) override;
  void on_server_evaluation(int round, const metric_record& metrics) override;
  void on_version(const version_report& report, int num_versions) override;
  void on_resumed(int next_round, int num_rounds) override;
  void on_checkpoint(int round, double seconds, uint64_t bytes, const std::string& error) override;
  void on_finished(const strategy_result& result) override;

  /// How many failure reasons a phase lists before "... and N more".
  static constexpr size_t failures_shown = 10;

 private:
  logger log_;
};

}  // namespace stamen
