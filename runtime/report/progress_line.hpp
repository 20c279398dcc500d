#pragma once

// The live line under Flower's log on a terminal: round r/N (or version),
// phase, replies received of those sampled, failures, elapsed and estimated
// remaining time, redrawn as events arrive (logger::set_status). A
// run_observer like the others; the command adds it only when stderr is a
// terminal, so logs in files and CI never see it.

#include <chrono>
#include <functional>
#include <string>

#include "runtime/run_events.hpp"

namespace stamen {

/// The live progress line of a run on a terminal (see the top of this file).
class progress_line : public run_observer {
 public:
  /// `draw` shows the line (by default the process's status line; a
  /// superlink sends it to the run's submitter instead).
  explicit progress_line(std::function<void(const std::string&)> draw = logger_status);
  /// The default `draw`: logger::set_status(text).
  static void logger_status(const std::string& text);

  void on_start(const std::string& strategy, int num_rounds, const std::vector<std::string>&) override;
  void on_round_start(int round, int num_rounds) override;
  void on_sampled(int round, run_phase phase, size_t sampled, size_t available) override;
  void on_reply_accepted(int round, run_phase phase, uint64_t node_id) override;
  void on_reply_failed(int round, run_phase phase, uint64_t node_id, const std::string& reason) override;
  void on_version(const version_report& report, int num_versions) override;
  void on_finished(const strategy_result& result) override;

  /// The line as it stands (what is drawn).
  std::string text() const;

 private:
  void draw();
  std::function<void(const std::string&)> draw_;
  using clock = std::chrono::steady_clock;
  clock::time_point start_ = clock::now();
  clock::time_point round_start_ = start_;
  int round_ = 0, total_ = 0, done_ = 0;
  bool versions_ = false;
  std::string phase_ = "starting";
  size_t sampled_ = 0, replies_ = 0, failures_ = 0;
};

}  // namespace stamen
