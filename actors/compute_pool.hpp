#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace stamen {

/// A fixed set of threads for blocking ClientApp work (training), so that
/// CAF's scheduler threads stay free for routing, heartbeats and aggregation,
/// and so that at most `threads` trainings run at once. With 0 threads, jobs
/// run inline in the caller (for handlers that do no real compute).
class compute_pool {
 public:
  /// `on_start` runs once on each worker thread before any job.
  explicit compute_pool(size_t threads, std::function<void()> on_start = {});
  ~compute_pool();

  compute_pool(const compute_pool&) = delete;
  compute_pool& operator=(const compute_pool&) = delete;

  /// Runs `job` on a worker (or right away when the pool has no threads).
  void post(std::function<void()> job);

  size_t threads() const { return workers_.size(); }

 private:
  void work();

  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::function<void()> on_start_;
  std::vector<std::thread> workers_;
};

}  // namespace stamen
