#pragma once

// A small exact ClientApp for actor tests, and FedAvg computed by its formula.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cmath>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/client_app.hpp"
#include "runtime/strategy_result.hpp"

namespace stamen::test {

// Node p replies to train with (global + p + 1), weighted num-examples = p + 1,
// after sleeping `sleep_ms`, and counts its calls in Context.state ("calls");
// evaluate replies eval_loss = p.
inline std::shared_ptr<client_app> arithmetic_app(int64_t p, int sleep_ms = 0) {
  auto app = std::make_shared<client_app>();
  app->train([p, sleep_ms](const message& m, context& ctx) {
    if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
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

inline void check_arrays(const strategy_result& r, const std::vector<double>& want) {
  auto w = r.arrays.get("w")->to_vector<float>();
  for (size_t i = 0; i < 3; ++i)
    BOOST_TEST(std::abs(w[i] - want[i]) <= 1e-6 * std::max(1.0, std::abs(want[i])),
               "w[" << i << "] = " << w[i] << ", want " << want[i]);
}

}  // namespace stamen::test
