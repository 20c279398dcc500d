#pragma once

// What a run reports, as events. The strategy's round loop emits them; the
// Flower-format log, the JSON result and any other view of a run (progress
// lines, dashboards) subscribe. Nothing here knows who listens.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "messages/metric_record.hpp"
#include "runtime/strategy/strategy_result.hpp"

namespace stamen {

/// The two phases of a round, named as their message types (`train`, `evaluate`).
enum class run_phase : uint8_t {
  train,     ///< nodes fit the global arrays to their data and reply with updates
  evaluate   ///< nodes measure the global arrays on their data and reply with metrics
};

/// "train" or "evaluate".
const char* to_string(run_phase x);

/// Receives a run's events in the order they happen, never concurrently
/// (replies are reported from the actor that folds them while the ServerApp's
/// thread waits). Every method does nothing by default: an observer
/// overrides what it shows.
class run_observer {
 public:
  virtual ~run_observer() = default;

  /// A strategy starts: its name, the number of rounds, and its summary tree
  /// (one line per entry, as Flower logs it).
  virtual void on_start(const std::string& strategy, int num_rounds,
                        const std::vector<std::string>& summary) {}
  /// Round `round` (1-based) of `num_rounds` begins, before its train phase
  /// (Flower's "[ROUND r/N]").
  virtual void on_round_start(int round, int num_rounds) {}
  /// `sampled` of the `available` nodes get an instruction in this phase.
  virtual void on_sampled(int round, run_phase phase, size_t sampled, size_t available) {}
  /// A reply was folded into the aggregate.
  virtual void on_reply_accepted(int round, run_phase phase, uint64_t node_id) {}
  /// A reply (or its absence by the deadline) counted as a failure.
  virtual void on_reply_failed(int round, run_phase phase, uint64_t node_id,
                               const std::string& reason) {}
  /// A phase closed: what was sampled, received and failed, and its wall time.
  virtual void on_phase_end(run_phase phase, const phase_report& report) {}
  /// A train round's aggregate was not used; the global arrays stay as they were.
  virtual void on_arrays_kept(int round, const std::string& why) {}
  /// The metrics aggregated over a phase's accepted replies.
  virtual void on_aggregated(int round, run_phase phase, const metric_record& metrics) {}
  /// Server-side evaluation of the global arrays (round 0: the initial ones).
  virtual void on_server_evaluation(int round, const metric_record& metrics) {}
  /// The run is over: Flower's Result plus what happened in each round.
  virtual void on_finished(const strategy_result& result) {}
  /// Asynchronous runs: the global model moved to a new version.
  virtual void on_version(const version_report& report, int num_versions) {}
  /// The run goes on from a checkpoint: `next_round` is the first round run now.
  virtual void on_resumed(int next_round, int num_rounds) {}
  /// A checkpoint after `round` was written (`error` empty) or could not be.
  virtual void on_checkpoint(int round, double seconds, uint64_t bytes, const std::string& error) {}
};

/// Hands every event to each observer added, in the order they were added.
class run_events : public run_observer {
 public:
  /// Adds an observer it shares ownership of; null is ignored.
  void add(std::shared_ptr<run_observer> observer);
  /// Adds an observer owned elsewhere, which must outlive this one.
  void add(run_observer& observer);

  void on_start(const std::string& strategy, int num_rounds,
                const std::vector<std::string>& summary) override;
  void on_round_start(int round, int num_rounds) override;
  void on_sampled(int round, run_phase phase, size_t sampled, size_t available) override;
  void on_reply_accepted(int round, run_phase phase, uint64_t node_id) override;
  void on_reply_failed(int round, run_phase phase, uint64_t node_id,
                       const std::string& reason) override;
  void on_phase_end(run_phase phase, const phase_report& report) override;
  void on_arrays_kept(int round, const std::string& why) override;
  void on_aggregated(int round, run_phase phase, const metric_record& metrics) override;
  void on_server_evaluation(int round, const metric_record& metrics) override;
  void on_finished(const strategy_result& result) override;
  void on_version(const version_report& report, int num_versions) override;
  void on_resumed(int next_round, int num_rounds) override;
  void on_checkpoint(int round, double seconds, uint64_t bytes, const std::string& error) override;

 private:
  std::vector<std::shared_ptr<run_observer>> observers_;
};

/// Keeps the result of the last run that finished.
class result_capture : public run_observer {
 public:
  void on_finished(const strategy_result& result) override { result_ = result; }
  /// The last finished run's result; empty until a run finished.
  const std::optional<strategy_result>& result() const { return result_; }

 private:
  std::optional<strategy_result> result_;
};

/// Lets another thread (a signal handler's, say) stop a run: the strategy
/// ends after the phase in flight, with the result so far.
class run_stop {
 public:
  /// Thread-safe and idempotent; runs the interrupt hook, if one is set.
  void request();
  /// Whether request() was called (from any thread).
  bool requested() const { return requested_.load(); }
  /// What cuts the phase in flight short (the grid's); {} unsets it. Runs at
  /// once if a stop was already requested.
  void set_interrupt(std::function<void()> hook);

 private:
  std::atomic<bool> requested_{false};
  std::mutex mtx_;
  std::function<void()> interrupt_;
};

/// Makes `observer` the one that runs started on this thread report to (and
/// `stop`, if given, what may stop them), for as long as the scope lives.
/// The runtime opens one around a ServerApp's main, much as Flower's log
/// handlers sit on its root logger, so that an app's strategy reports
/// without the app passing anything along. Scopes nest.
class run_scope {
 public:
  /// Enters the scope; `observer` and `stop` must outlive it. The destructor
  /// restores the enclosing scope's observer and stop.
  explicit run_scope(run_observer& observer, const run_stop* stop = nullptr);
  ~run_scope();
  run_scope(const run_scope&) = delete;
  run_scope& operator=(const run_scope&) = delete;

 private:
  run_observer* previous_;
  const run_stop* previous_stop_;
};

/// The observer of the innermost run_scope on this thread, or one that
/// ignores everything.
run_observer& current_run_observer();

/// True once the innermost run_scope's run_stop was requested.
bool run_stop_requested();

}  // namespace stamen
