#include <boost/test/unit_test.hpp>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "actors/compute_pool.hpp"

using namespace stamen;

BOOST_AUTO_TEST_SUITE(compute_pool_suite)

// A setup added after the workers started runs once on each of them before
// its next job: every job that starts after add_thread_setup sees it done on
// its own thread.
BOOST_AUTO_TEST_CASE(a_thread_setup_runs_once_per_worker_before_its_next_job) {
  std::mutex mtx;
  std::condition_variable cv;
  std::multiset<std::thread::id> setup_threads;
  size_t jobs_done = 0, jobs_without_setup = 0;
  thread_local bool set_up = false;
  {
    compute_pool pool{3};
    pool.add_thread_setup([&] {
      set_up = true;
      std::lock_guard<std::mutex> guard{mtx};
      setup_threads.insert(std::this_thread::get_id());
    });
    for (int i = 0; i < 60; ++i)
      pool.post([&] {
        std::lock_guard<std::mutex> guard{mtx};
        if (!set_up) ++jobs_without_setup;
        ++jobs_done;
        cv.notify_all();
      });
    std::unique_lock<std::mutex> lock{mtx};
    cv.wait(lock, [&] { return jobs_done == 60; });
  }
  BOOST_TEST(jobs_without_setup == 0u);
  BOOST_TEST(setup_threads.size() <= 3u);
  for (auto& id : setup_threads) BOOST_TEST(setup_threads.count(id) == 1u);
}

BOOST_AUTO_TEST_CASE(without_threads_a_setup_runs_at_once_on_the_caller) {
  compute_pool pool{0};
  bool ran = false;
  pool.add_thread_setup([&] { ran = true; });
  BOOST_TEST(ran);
}

// A ClientApp build that never returns (a setup), or a job without a
// deadline, used to hold the pool's destructor forever; now each gets the
// grace from the moment the pool ends, and is abandoned after it.
BOOST_AUTO_TEST_CASE(a_hung_setup_or_job_without_deadline_does_not_hold_the_pool_at_its_end) {
  for (bool in_setup : {true, false}) {
    // Shared with the hung thread, which outlives this iteration's stack.
    struct gate {
      std::mutex mtx;
      std::condition_variable cv;
      bool started = false, release = false;
    };
    auto g = std::make_shared<gate>();
    auto hang = [g] {
      std::unique_lock<std::mutex> lock{g->mtx};
      g->started = true;
      g->cv.notify_all();
      g->cv.wait(lock, [&] { return g->release; });
    };
    auto before = compute_pool::abandoned();
    auto* pool = new compute_pool{1, {}, std::chrono::milliseconds(50)};
    if (in_setup) {
      pool->add_thread_setup(hang);
      pool->post([] {});
    } else {
      pool->post(hang);  // no deadline
    }
    {
      std::unique_lock<std::mutex> lock{g->mtx};
      g->cv.wait(lock, [&] { return g->started; });
    }
    auto ended = std::async(std::launch::async, [pool] { delete pool; });
    // A bound for the failure only: the destructor returns after its 50 ms grace.
    BOOST_TEST((ended.wait_for(std::chrono::seconds(60)) == std::future_status::ready),
               (in_setup ? "a hung setup" : "a job without deadline") << " held the pool's destructor");
    BOOST_TEST(compute_pool::abandoned() == before + 1);
    {
      std::lock_guard<std::mutex> guard{g->mtx};
      g->release = true;
    }
    g->cv.notify_all();
    ended.wait();
  }
}

BOOST_AUTO_TEST_SUITE_END()
