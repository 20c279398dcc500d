#pragma once

// Helpers shared by the benchmarks: timing, medians, RSS and JSON lines.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Median of `reps` timed runs of `fn` after `warmup` untimed ones, in seconds.
inline double median_time(int reps, int warmup, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> xs;
  for (int i = 0; i < reps; ++i) {
    double t0 = now_s();
    fn();
    xs.push_back(now_s() - t0);
  }
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

/// Runs `a` and `b` alternately, `reps` times each after `warmup` untimed
/// pairs, so that a noisy neighbour slows both alike: the median time of
/// each, and the median over pairs of time(b) / time(a).
struct paired_times {
  double a, b, b_over_a;
};
inline paired_times paired_median_times(int reps, int warmup, const std::function<void()>& a,
                                        const std::function<void()>& b) {
  for (int i = 0; i < warmup; ++i) a(), b();
  std::vector<double> ta, tb, ratio;
  for (int i = 0; i < reps; ++i) {
    double t0 = now_s();
    a();
    double t1 = now_s();
    b();
    double t2 = now_s();
    ta.push_back(t1 - t0), tb.push_back(t2 - t1), ratio.push_back((t2 - t1) / (t1 - t0));
  }
  auto median = [](std::vector<double> xs) {
    std::sort(xs.begin(), xs.end());
    return xs[xs.size() / 2];
  };
  return {median(ta), median(tb), median(ratio)};
}

/// Resident set size of this process, in bytes.
inline size_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  size_t pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * 4096;
}

/// One JSON object per line: {"benchmark": ..., fields...}.
class line {
 public:
  explicit line(const std::string& name) { s_ = "{\"benchmark\": \"" + name + "\""; }
  line& num(const std::string& k, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    s_ += ", \"" + k + "\": " + buf;
    return *this;
  }
  line& str(const std::string& k, const std::string& v) {
    s_ += ", \"" + k + "\": \"" + v + "\"";
    return *this;
  }
  line& flag(const std::string& k, bool v) {
    s_ += ", \"" + k + "\": " + (v ? "true" : "false");
    return *this;
  }
  void print() const { std::printf("%s}\n", s_.c_str()), std::fflush(stdout); }

 private:
  std::string s_;
};

}  // namespace bench
