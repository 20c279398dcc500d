#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "messages/message.hpp"
#include "runtime/grid.hpp"
#include "runtime/run_events.hpp"
#include "runtime/strategy/strategy_result.hpp"
#include "runtime/strategy/train_workflow.hpp"

namespace stamen {

/// Raised by a strategy when a run cannot go on (no nodes, all nodes dead).
/// It is caught at the ServerApp boundary and ends the run with an error.
class run_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What aggregating a round of training produced.
struct train_aggregate {
  /// The new global arrays' candidate; unset when no reply was accepted.
  std::optional<array_record> arrays;
  /// The aggregated train metrics (Flower's `train_metrics_aggr_fn`); unset when none.
  std::optional<metric_record> metrics;
};

/// Folds train replies one at a time. Streaming aggregators (FedAvg) keep a
/// running sum; aggregators that need every update at once (median, Krum)
/// keep the replies they accept and do their work in finish().
class train_aggregator {
 public:
  virtual ~train_aggregator() = default;
  /// Validates a reply (that has content) and folds it in, or says why not;
  /// a rejected reply leaves the aggregate untouched.
  virtual expected<void> accept(const message& reply) = 0;
  /// The aggregate over the accepted replies (no arrays if none was accepted).
  virtual train_aggregate finish() = 0;
};

/// Folds evaluate replies one at a time.
class evaluate_aggregator {
 public:
  virtual ~evaluate_aggregator() = default;
  /// Validates a reply (that has content) and folds its metrics in, or says
  /// why not; a rejected reply leaves the aggregate untouched.
  virtual expected<void> accept(const message& reply) = 0;
  /// The aggregated evaluate metrics (Flower's `evaluate_metrics_aggr_fn`),
  /// or nothing when no reply was accepted or there is no aggregation.
  virtual std::optional<metric_record> finish() = 0;
};

/// Server-side evaluation: round number and current arrays to metrics.
using evaluate_fn = std::function<std::optional<metric_record>(int, const array_record&)>;

class checkpoint_store;

/// Flower's Strategy (flwr.serverapp.strategy): the round loop in start(),
/// with what to send and how to aggregate left to implementations. The loop
/// reports what happens as events (run_events.hpp) to the observer of the
/// ServerApp's thread; it logs nothing itself.
class strategy {
 public:
  virtual ~strategy() = default;

  /// The strategy's name as Flower's log prints it ("FedAvg", "FedProx", ...);
  /// also recorded in a checkpoint, which only a strategy of that name resumes.
  virtual std::string name() const = 0;

  /// The "Starting <name> strategy:" tree, one line per entry, as Flower logs it.
  virtual std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                           const config_record& train_config,
                                           const config_record& evaluate_config) const = 0;

  /// Flower's `configure_train`: samples the nodes of round `round` (1-based)
  /// on `g` and builds one `train` instruction for each, carrying `arrays`
  /// (the current global arrays) and `config` (FedAvg adds "server-round").
  /// An empty result skips the phase; run_error ends the run (FedAvg throws it
  /// when fewer than min_available_nodes connect in time).
  virtual std::vector<message> configure_train(int round, const array_record& arrays,
                                               config_record config, grid& g) = 0;
  /// A fresh aggregator for the train replies of round `round`; `current`
  /// (the global arrays the round started from) fixes the layout a reply must
  /// match and is the base for strategies that aggregate differences.
  virtual std::unique_ptr<train_aggregator> make_train_aggregator(int round,
                                                                  const array_record& current) = 0;
  /// Flower's `configure_evaluate`: as configure_train, with `evaluate`
  /// instructions for the round's evaluation of `arrays`.
  virtual std::vector<message> configure_evaluate(int round, const array_record& arrays,
                                                  config_record config, grid& g) = 0;
  /// A fresh aggregator for the evaluate replies of round `round`.
  virtual std::unique_ptr<evaluate_aggregator> make_evaluate_aggregator(int round) = 0;

  /// Says why a train round's aggregate must not replace the global arrays
  /// (too few valid replies, say), or nothing when it may.
  virtual std::optional<std::string> reject_train_round(const phase_report& report) const {
    return std::nullopt;
  }

  /// The new global arrays from an aggregate that was accepted: the
  /// aggregate itself by default; a server-side optimizer (FedAvgM) steps
  /// from `current` here, so that its state moves only on accepted rounds.
  virtual array_record update_global(int round, const array_record& current,
                                     array_record aggregated) {
    return aggregated;
  }

  /// A strategy's own state for a checkpoint: what it needs, beyond the
  /// global arrays, the round and the history, to go on as if it had never
  /// stopped (its sampling RNG, momentum, optimizer moments, ...). Each
  /// class adds its own records under its own names and calls its base.
  virtual void save_state(record_dict& out) const {}
  /// Restores what save_state wrote; fails naming what is missing or wrong.
  virtual expected<void> restore_state(const record_dict& in) { return {}; }

  /// Whether aggregating needs each node's own update (a median, Krum's
  /// distances, an update applied on arrival): such a strategy cannot run
  /// under a workflow that hides them, as secure aggregation does.
  virtual bool needs_individual_updates() const { return false; }

  /// Runs every round's training through `workflow` (SecAgg+, say) instead
  /// of one instruction and one reply per node; null restores that. Throws
  /// std::invalid_argument, naming both, when the strategy needs individual
  /// updates, so that the run fails before any node starts.
  void set_train_workflow(std::shared_ptr<train_workflow> workflow);

  /// The workflow set, or null.
  const std::shared_ptr<train_workflow>& workflow() const { return workflow_; }

  /// Flower's batch form: aggregates replies already received (errors skipped).
  train_aggregate aggregate_train(int round, const std::vector<message>& replies,
                                  const array_record& current);
  /// Flower's batch form of evaluate aggregation: the metrics of replies
  /// already received (errors and rejected replies skipped), or nothing.
  std::optional<metric_record> aggregate_evaluate(int round, const std::vector<message>& replies);

  /// Runs `num_rounds` rounds of train then evaluate on `g`. Replies are
  /// folded as they arrive. Throws run_error when the run cannot go on.
  /// Under a checkpoint_scope (checkpoint.hpp), each completed round is
  /// checkpointed, and a checkpoint already there is resumed: the arrays,
  /// history and state it holds replace `initial_arrays`, and the loop goes
  /// on at the round after it.
  /// (Asynchronous strategies override it with a loop without rounds.)
  virtual strategy_result start(grid& g, array_record initial_arrays, int num_rounds = 3,
                                double timeout_s = 3600, config_record train_config = {},
                                config_record evaluate_config = {},
                                evaluate_fn server_evaluate = {});

  /// Where this strategy's events go: the observer of the run_scope the
  /// calling thread is in (see run_events.hpp), or nowhere.
  run_observer& events() const { return current_run_observer(); }

 private:
  std::shared_ptr<train_workflow> workflow_;
  /// Restores a checkpoint, if `store` holds one; returns the round to run next.
  int resume(const checkpoint_store& store, int num_rounds, strategy_result& result);
  void checkpoint(checkpoint_store& store, int round, int num_rounds, const strategy_result& result);
  /// One round: train, then evaluate, then server-side evaluation.
  void run_round(grid& g, int round, double timeout_s, const config_record& train_config,
                 const config_record& evaluate_config, const evaluate_fn& server_evaluate,
                 strategy_result& result);
  void train_round(grid& g, int round, double timeout_s, const config_record& config,
                   strategy_result& result);

 protected:
  /// One evaluate phase, reported as round `round` of `result`.
  void evaluate_round(grid& g, int round, double timeout_s, const config_record& config,
                      strategy_result& result);
};

}  // namespace stamen
