#include "actors/compute_pool.hpp"

namespace stamen {

compute_pool::compute_pool(size_t threads, std::function<void()> on_start)
    : on_start_(std::move(on_start)) {
  workers_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

compute_pool::~compute_pool() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void compute_pool::post(std::function<void()> job) {
  if (workers_.empty()) {
    job();
    return;
  }
  {
    std::lock_guard<std::mutex> guard{mtx_};
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void compute_pool::work() {
  if (on_start_) on_start_();
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock{mtx_};
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      // Pending jobs are dropped at shutdown: their nodes are gone too.
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace stamen
