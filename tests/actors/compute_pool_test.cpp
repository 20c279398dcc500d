#include <boost/test/unit_test.hpp>

#include <condition_variable>
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

BOOST_AUTO_TEST_SUITE_END()
