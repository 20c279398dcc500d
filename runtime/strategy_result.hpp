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

/// Flower's Result, plus what happened in each round.
struct strategy_result {
  array_record arrays;
  std::map<int, metric_record> train_metrics_clientapp;
  std::map<int, metric_record> evaluate_metrics_clientapp;
  std::map<int, metric_record> evaluate_metrics_serverapp;
  std::vector<phase_report> train_rounds;
  std::vector<phase_report> evaluate_rounds;
  double seconds = 0;
  /// The run was stopped (SIGINT, say) before its last round: what is here
  /// is the result so far.
  bool stopped = false;
};

}  // namespace stamen
