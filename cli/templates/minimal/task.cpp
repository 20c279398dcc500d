#include "task.hpp"

#include <random>

namespace @NAME@ {

namespace {

std::vector<float> read(const stamen::array_record& m, const char* key) {
  return m.get(key)->to_vector<float>();
}

double predict(const std::vector<float>& w, float b, const std::vector<float>& x) {
  double y = b;
  for (size_t i = 0; i < x.size(); ++i) y += static_cast<double>(w[i]) * x[i];
  return y;
}

}  // namespace

std::vector<sample> make_data(int64_t id, int64_t count, uint64_t seed) {
  const std::vector<float> w_true{1.5f, -2.0f, 0.5f, 3.0f};
  const float b_true = 0.7f;
  std::mt19937_64 rng(seed * 1000003 + static_cast<uint64_t>(id));
  std::normal_distribution<float> x(static_cast<float>(id) * 0.1f, 1.0f), noise(0.0f, 0.1f);
  std::vector<sample> out(static_cast<size_t>(count));
  for (auto& s : out) {
    s.x.resize(features);
    for (auto& v : s.x) v = x(rng);
    s.y = static_cast<float>(predict(w_true, b_true, s.x)) + noise(rng);
  }
  return out;
}

stamen::array_record initial_model() {
  stamen::array_record m;
  m.insert_or_assign("w", stamen::array::from_values(stamen::dtype::float32, {features},
                                                     std::vector<float>(features, 0.0f)));
  m.insert_or_assign("b", stamen::array::from_values(stamen::dtype::float32, {1}, std::vector<float>{0.0f}));
  return m;
}

std::pair<stamen::array_record, double> train(const stamen::array_record& model,
                                              const std::vector<sample>& data, int64_t epochs,
                                              double lr) {
  auto w = read(model, "w");
  float b = read(model, "b")[0];
  double mse = 0;
  for (int64_t e = 0; e < epochs; ++e) {
    mse = 0;
    for (auto& s : data) {
      double err = predict(w, b, s.x) - s.y;
      mse += err * err;
      for (size_t i = 0; i < w.size(); ++i) w[i] -= static_cast<float>(lr * err * s.x[i]);
      b -= static_cast<float>(lr * err);
    }
    mse /= static_cast<double>(data.size());
  }
  stamen::array_record out;
  out.insert_or_assign("w", stamen::array::from_values(stamen::dtype::float32, {features}, w));
  out.insert_or_assign("b", stamen::array::from_values(stamen::dtype::float32, {1}, std::vector<float>{b}));
  return {out, mse};
}

double evaluate(const stamen::array_record& model, const std::vector<sample>& data) {
  auto w = read(model, "w");
  float b = read(model, "b")[0];
  double mse = 0;
  for (auto& s : data) mse += (predict(w, b, s.x) - s.y) * (predict(w, b, s.x) - s.y);
  return mse / static_cast<double>(data.size());
}

}  // namespace @NAME@
