#pragma once

// The arithmetic app (tests/support) and a Boost.Test check of its result.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>

#include "runtime/strategy/strategy_result.hpp"
#include "tests/support/arithmetic_app.hpp"

namespace stamen::test {

inline void check_arrays(const strategy_result& r, const std::vector<double>& want) {
  auto w = r.arrays.get("w")->to_vector<float>();
  for (size_t i = 0; i < 3; ++i)
    BOOST_TEST(std::abs(w[i] - want[i]) <= 1e-6 * std::max(1.0, std::abs(want[i])),
               "w[" << i << "] = " << w[i] << ", want " << want[i]);
}

}  // namespace stamen::test
