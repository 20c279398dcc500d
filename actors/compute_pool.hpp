#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

namespace stamen {

/// A fixed set of threads for blocking ClientApp work (training), so that
/// CAF's scheduler threads stay free for routing, heartbeats and aggregation,
/// and so that at most `threads` trainings run at once. With 0 threads, jobs
/// run inline in the caller (for handlers that do no real compute).
///
/// A job may carry a deadline (its instruction's). One still running
/// `grace` after it is abandoned: C++ cannot stop a thread, so that thread is
/// left to finish (or spin) on its own, and a fresh worker takes its place,
/// so that one stuck handler never holds other nodes' work.
class compute_pool {
 public:
  using clock_type = std::chrono::steady_clock;

  /// `on_start` runs once on each worker thread before any job.
  explicit compute_pool(size_t threads, std::function<void()> on_start = {},
                        std::chrono::milliseconds grace = std::chrono::seconds(2));
  /// Drops queued jobs and waits for running ones, each at most until its
  /// deadline plus the grace (abandoning it then); a job without a deadline
  /// and a thread setup still running get the grace from now, so the pool
  /// ends within the grace whatever the app does.
  ~compute_pool();

  compute_pool(const compute_pool&) = delete;
  compute_pool& operator=(const compute_pool&) = delete;

  /// Runs `job` on a worker (or right away when the pool has no threads).
  void post(std::function<void()> job, clock_type::time_point deadline = clock_type::time_point::max());

  /// Runs `setup` on every worker thread before that thread's next job (and
  /// on replacements started later): per-thread setup of an app loaded after
  /// the pool started (e.g. torch's thread count, on a node link that loads
  /// each run's app when the run starts).
  void add_thread_setup(std::function<void()> setup);

  size_t threads() const { return threads_; }

  /// Threads abandoned by any pool of this process so far. Such a thread may
  /// still be running app code: a process that has any ends without running
  /// static destructors (see the command's exit).
  static size_t abandoned();

 private:
  struct state;
  std::shared_ptr<state> state_;
  size_t threads_;
};

}  // namespace stamen
