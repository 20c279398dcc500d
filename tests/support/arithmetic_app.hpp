#pragma once

// A small exact ClientApp for tests (in-process and as the cluster tests'
// gated app), FedAvg computed by its formula, and a gate to hold handlers at.
// No Boost.Test here: an app library includes it too.

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "runtime/client_app.hpp"

namespace stamen::test {

/// What a test holds a handler on, so that it acts (kills a node, closes a
/// round) at a point it observes rather than after a guessed time: the
/// handler says it arrived, then waits until the test opens the gate.
class gate {
 public:
  /// Called by the handler: marks the arrival, then blocks until open.
  void pass() {
    std::unique_lock<std::mutex> lock{mtx_};
    ++arrived_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
  }
  /// Blocks until `n` handlers arrived (or `timeout_s` passed); true if they did.
  bool wait_arrivals(size_t n, double timeout_s = 60) {
    std::unique_lock<std::mutex> lock{mtx_};
    return cv_.wait_for(lock, std::chrono::duration<double>(timeout_s),
                        [&] { return arrived_ >= n; });
  }
  void open() {
    std::lock_guard<std::mutex> guard{mtx_};
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mtx_;
  std::condition_variable cv_;
  size_t arrived_ = 0;
  bool open_ = false;
};

// Node p replies to train with (global + p + 1), weighted num-examples = p + 1,
// and counts its calls in Context.state ("calls"); evaluate replies
// eval_loss = p. With a gate, train passes it first.
inline std::shared_ptr<client_app> arithmetic_app(int64_t p, std::shared_ptr<gate> held = nullptr) {
  auto app = std::make_shared<client_app>();
  app->train([p, held](const message& m, context& ctx) {
    if (held) held->pass();
    if (!ctx.state.contains("calls")) ctx.state.insert_or_assign("calls", metric_record{});
    auto& counter = std::get<metric_record>(*ctx.state.get("calls"));
    int64_t calls = counter.contains("n") ? std::get<int64_t>(*counter.get("n")) : 0;
    counter.insert_or_assign("n", calls + 1);
    auto in = m.content().arrays("arrays")->get("w")->to_vector<float>();
    for (auto& x : in) x += static_cast<float>(p + 1);
    record_dict c;
    c.insert_or_assign("arrays", array_record{{"w", array::from_values(
                                                        dtype::float32, {static_cast<int64_t>(in.size())}, in)}});
    c.insert_or_assign("metrics", metric_record{{"calls", calls + 1}, {"num-examples", p + 1}});
    return make_reply(m, c);
  });
  app->evaluate([p](const message& m, context&) {
    record_dict c;
    c.insert_or_assign("metrics",
                       metric_record{{"eval_loss", static_cast<double>(p)}, {"num-examples", p + 1}});
    return make_reply(m, c);
  });
  return app;
}

/// The initial arrays the tests start from: w = {0, 1, 2}.
inline array_record initial_arrays() {
  return {{"w", array::from_values(dtype::float32, {3}, std::vector<float>{0, 1, 2})}};
}

/// FedAvg by the formula: each round adds sum (p+1)^2 / sum (p+1) over the
/// nodes whose reply counted in that round (an empty round changes nothing).
inline std::vector<double> expected_arrays(const std::vector<std::vector<int64_t>>& per_round) {
  std::vector<double> w{0, 1, 2};
  for (auto& ps : per_round) {
    if (ps.empty()) continue;
    double num = 0, den = 0;
    for (auto p : ps) num += static_cast<double>((p + 1) * (p + 1)), den += static_cast<double>(p + 1);
    for (auto& x : w) x += num / den;
  }
  return w;
}

/// `rounds` rounds over the same nodes `ps`.
inline std::vector<double> expected_after(const std::vector<int64_t>& ps, int rounds) {
  return expected_arrays(std::vector<std::vector<int64_t>>(static_cast<size_t>(rounds), ps));
}

}  // namespace stamen::test
