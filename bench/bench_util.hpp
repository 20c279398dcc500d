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
