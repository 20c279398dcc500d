// The task: a linear model y = w . x + b, trained by SGD on a node's own
// synthetic data (each partition draws its own x around one true model).
#pragma once

#include <cstdint>
#include <vector>

#include "messages/array_record.hpp"

namespace @NAME@ {

constexpr int64_t features = 4;

struct sample {
  std::vector<float> x;
  float y = 0;
};

/// The samples of partition `id`, drawn from `seed`.
std::vector<sample> make_data(int64_t id, int64_t count, uint64_t seed);

/// The global model's arrays: "w" (features) and "b" (1), zero.
stamen::array_record initial_model();

/// `epochs` of SGD on `data` from `model`; returns the trained arrays and
/// the mean squared error of the last epoch.
std::pair<stamen::array_record, double> train(const stamen::array_record& model,
                                              const std::vector<sample>& data, int64_t epochs,
                                              double lr);

/// The mean squared error of `model` on `data`.
double evaluate(const stamen::array_record& model, const std::vector<sample>& data);

}  // namespace @NAME@
