#pragma once

// What a superlink counts for Prometheus (`/metrics`): plain counters and
// histograms that its broker updates and renders in the text exposition
// format. No CAF and no HTTP here, so that the format is tested on its own.

#include <array>
#include <cstdint>
#include <map>
#include <string>

namespace stamen {

/// A Prometheus histogram with fixed buckets (upper bounds, seconds).
class histogram {
 public:
  static constexpr std::array<double, 10> bounds{0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300};
  void observe(double x);
  /// The HELP/TYPE lines and the _bucket, _sum and _count samples.
  std::string render(const std::string& name, const std::string& help) const;

 private:
  std::array<uint64_t, bounds.size()> counts_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

class superlink_metrics {
 public:
  void round_completed(double seconds);
  /// A reply accepted (`reason` empty) or failed, by phase ("train", "evaluate").
  void reply(const std::string& phase, const std::string& failure_reason);
  void checkpoint(double seconds);
  void bytes_in(uint64_t n) { bytes_in_ += n; }
  void bytes_out(uint64_t n) { bytes_out_ += n; }
  void node_joined(uint64_t n = 1) { joins_ += n; }

  /// The exposition, with the gauges the broker knows at the moment.
  std::string render(size_t nodes_connected, const std::map<std::string, uint64_t>& runs_by_status) const;

  /// A failure reason's category, a label with few values: timeout, error,
  /// rejected, duplicate, unexpected or other.
  static std::string reason_label(const std::string& reason);

 private:
  histogram round_seconds_, checkpoint_seconds_;
  uint64_t rounds_ = 0, joins_ = 0, bytes_in_ = 0, bytes_out_ = 0;
  std::map<std::string, uint64_t> replies_;                          ///< by phase
  std::map<std::pair<std::string, std::string>, uint64_t> failures_;  ///< by phase and reason
};

}  // namespace stamen
