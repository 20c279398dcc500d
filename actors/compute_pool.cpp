#include "actors/compute_pool.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace stamen {

namespace {

std::atomic<size_t> abandoned_threads{0};

}  // namespace

// Shared by the pool, its workers and its watchdog: an abandoned worker may
// outlive the pool, and touches only this when (if) its job returns.
struct compute_pool::state {
  struct job {
    std::function<void()> fn;
    clock_type::time_point deadline;
  };
  struct worker {
    std::thread thread;
    bool busy = false;
    bool abandoned = false;
    size_t setups_run = 0;  ///< of `setups`, in order
    clock_type::time_point deadline = clock_type::time_point::max();
  };

  std::mutex mtx;
  std::condition_variable work_cv;   // jobs queued, or stop
  std::condition_variable watch_cv;  // a job started or ended, or stop
  std::deque<job> jobs;
  std::vector<std::shared_ptr<worker>> workers;
  bool stop = false;
  std::function<void()> on_start;
  std::vector<std::function<void()>> setups;  ///< only grows
  std::chrono::milliseconds grace;
  std::thread watchdog;

  void start_worker(const std::shared_ptr<state>& self) {
    auto w = std::make_shared<worker>();
    workers.push_back(w);
    w->thread = std::thread([self, w] { self->work(*w); });
  }

  void work(worker& w) {
    if (on_start) on_start();
    std::unique_lock<std::mutex> lock{mtx};
    for (;;) {
      work_cv.wait(lock, [this] { return stop || !jobs.empty(); });
      // Queued jobs are dropped at shutdown: their nodes are gone too.
      if (stop) return;
      // A setup (an app's ClientApp build) counts as work: at shutdown it
      // gets the grace like a job, and is abandoned if it never returns.
      while (w.setups_run < setups.size()) {
        auto setup = setups[w.setups_run++];
        w.busy = true;
        w.deadline = clock_type::time_point::max();
        watch_cv.notify_all();
        lock.unlock();
        setup();
        setup = nullptr;
        lock.lock();
        w.busy = false;
        watch_cv.notify_all();
        if (w.abandoned) return;
      }
      if (stop) return;
      if (jobs.empty()) continue;  // another worker took it meanwhile
      auto j = std::move(jobs.front());
      jobs.pop_front();
      w.busy = true;
      // A job that waited in the queue past its deadline still gets the
      // grace from when it starts.
      w.deadline = std::max(j.deadline, clock_type::now());
      watch_cv.notify_all();
      lock.unlock();
      j.fn();
      j.fn = nullptr;  // what the job held goes before the lock is taken
      lock.lock();
      w.busy = false;
      watch_cv.notify_all();
      if (w.abandoned) return;  // a replacement already took this one's place
    }
  }

  // Abandons the workers whose job ran past its deadline plus the grace,
  // starting a replacement for each while the pool runs. Returns the next
  // time to look again.
  clock_type::time_point abandon_overdue(const std::shared_ptr<state>& self) {
    auto now = clock_type::now();
    auto next = clock_type::time_point::max();
    size_t n = workers.size();
    for (size_t i = 0; i < n; ++i) {
      auto w = workers[i];
      if (!w->busy || w->abandoned || w->deadline == clock_type::time_point::max()) continue;
      auto due = w->deadline + grace;
      if (due > now) {
        next = std::min(next, due);
        continue;
      }
      w->abandoned = true;
      w->thread.detach();
      ++abandoned_threads;
      if (!stop) start_worker(self);
    }
    return next;
  }

  void watch(const std::shared_ptr<state>& self) {
    std::unique_lock<std::mutex> lock{mtx};
    while (!stop) {
      auto next = abandon_overdue(self);
      if (next == clock_type::time_point::max()) watch_cv.wait(lock);
      else watch_cv.wait_until(lock, next);
    }
  }
};

compute_pool::compute_pool(size_t threads, std::function<void()> on_start,
                           std::chrono::milliseconds grace)
    : state_(std::make_shared<state>()), threads_(threads) {
  if (threads == 0) return;
  std::lock_guard<std::mutex> guard{state_->mtx};
  state_->on_start = std::move(on_start);
  state_->grace = grace;
  for (size_t i = 0; i < threads; ++i) state_->start_worker(state_);
  state_->watchdog = std::thread([s = state_] { s->watch(s); });
}

compute_pool::~compute_pool() {
  if (threads_ == 0) return;
  auto& s = *state_;
  std::vector<std::shared_ptr<state::worker>> workers;
  {
    std::unique_lock<std::mutex> lock{s.mtx};
    s.stop = true;
    s.work_cv.notify_all();
    s.watch_cv.notify_all();
  }
  s.watchdog.join();
  {
    // Running jobs finish, each until its deadline plus the grace at most;
    // one without a deadline, or a setup, gets the grace from now.
    std::unique_lock<std::mutex> lock{s.mtx};
    auto now = clock_type::now();
    for (auto& w : s.workers)
      if (w->busy && !w->abandoned) w->deadline = std::min(w->deadline, now);
    for (;;) {
      auto next = s.abandon_overdue(state_);
      bool running = false;
      for (auto& w : s.workers) running = running || (w->busy && !w->abandoned);
      if (!running) break;
      if (next == clock_type::time_point::max()) s.watch_cv.wait(lock);
      else s.watch_cv.wait_until(lock, next);
    }
    workers = s.workers;
  }
  for (auto& w : workers)
    if (!w->abandoned && w->thread.joinable()) w->thread.join();
}

void compute_pool::post(std::function<void()> job, clock_type::time_point deadline) {
  if (threads_ == 0) {
    job();
    return;
  }
  {
    std::lock_guard<std::mutex> guard{state_->mtx};
    state_->jobs.push_back({std::move(job), deadline});
  }
  state_->work_cv.notify_one();
}

void compute_pool::add_thread_setup(std::function<void()> setup) {
  if (threads_ == 0) {
    setup();  // jobs run on the caller's thread
    return;
  }
  std::lock_guard<std::mutex> guard{state_->mtx};
  state_->setups.push_back(std::move(setup));
}

size_t compute_pool::abandoned() { return abandoned_threads.load(); }

}  // namespace stamen
