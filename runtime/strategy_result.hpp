#pragma once

#include <map>
#include <string>
#include <vector>

#include "messages/array_record.hpp"
#include "messages/metric_record.hpp"

namespace stamen {

/// One phase (train or evaluate) of one round, as it happened.
struct phase_report {
  int round = 0;
  size_t sampled = 0;
  size_t results = 0;
  size_t failures = 0;
  std::vector<std::string> failure_reasons;
  double seconds = 0;
  /// The run was stopped (SIGINT, say) before its last round: what is here
  /// is the result so far.
  bool stopped = false;
};

/// One version of the global model in an asynchronous run (FedBuff, FedAsync).
struct version_report {
  int version = 0;
  /// The staleness τ of each update applied into this version, in the order
  /// applied: the global version then minus the one its node trained from.
  std::vector<int64_t> staleness;
  /// Replies refused since the previous version (errors, stale, invalid).
  size_t failures = 0;
  std::vector<std::string> failure_reasons;
  /// The fewest trainings in flight when a reply of this version was taken
  /// (the slot it held included): `concurrency` unless nodes ran short.
  size_t in_flight_min = 0;
  /// Seconds since the run started.
  double seconds = 0;

  size_t applied() const { return staleness.size(); }
  double staleness_mean() const {
    double s = 0;
    for (auto t : staleness) s += static_cast<double>(t);
    return staleness.empty() ? 0.0 : s / static_cast<double>(staleness.size());
  }
  int64_t staleness_max() const {
    int64_t m = 0;
    for (auto t : staleness) m = t > m ? t : m;
    return m;
  }
};

/// Flower's Result, plus what happened in each round.
struct strategy_result {
  array_record arrays;
  std::map<int, metric_record> train_metrics_clientapp;
  std::map<int, metric_record> evaluate_metrics_clientapp;
  std::map<int, metric_record> evaluate_metrics_serverapp;
  std::vector<phase_report> train_rounds;
  std::vector<phase_report> evaluate_rounds;
  /// Asynchronous runs: each version of the global model, in order (the
  /// evaluate rounds and metrics above are then keyed by version).
  std::vector<version_report> versions;
  double seconds = 0;
  /// The run was stopped (SIGINT, say) before its last round: what is here
  /// is the result so far.
  bool stopped = false;
};

}  // namespace stamen
