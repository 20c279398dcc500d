#pragma once

#include <vector>

#include "runtime/strategy/async_strategy.hpp"

namespace stamen {

/// FedBuff's parameters (Nguyen et al., AISTATS 2022).
struct fed_buff_options {
  size_t buffer_size = 3;             ///< K, updates per version
  double server_learning_rate = 1.0;  ///< η_g
};

/// FedBuff: each update Δ_k = w_k - w_base (the node trained from w_base)
/// goes into a buffer weighted by its staleness, s(τ) Δ_k; once K are in,
///   w ← w + η_g · (1/K) Σ s(τ_k) Δ_k
/// and the buffer empties. The buffer is a running sum (O(model) memory);
/// the updates are averaged unweighted, as in the paper.
class fed_buff : public async_strategy {
 public:
  /// Throws std::invalid_argument when buffer_size is 0 or
  /// server_learning_rate is not > 0.
  fed_buff(fed_avg_options opts, async_options async, fed_buff_options buff = {});

  std::string name() const override { return "FedBuff"; }
  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;

 protected:
  bool absorb(array_record& global, const array_record& update, const array_record& base,
              int64_t tau, double weight) override;

 private:
  fed_buff_options buff_;
  std::vector<std::vector<double>> sum_;  ///< Σ s(τ) Δ, per array
  size_t count_ = 0;
};

/// FedAsync's parameters (Xie et al., 2019).
struct fed_async_options {
  double mixing_alpha = 0.6;  ///< α
};

/// FedAsync: every update is mixed into the global model as it arrives,
///   w ← (1 - α_t) w + α_t w_k,   α_t = α · s(τ),
/// each one a new version.
class fed_async : public async_strategy {
 public:
  /// Throws std::invalid_argument unless mixing_alpha lies in (0, 1].
  fed_async(fed_avg_options opts, async_options async, fed_async_options mix = {});

  std::string name() const override { return "FedAsync"; }
  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;

 protected:
  bool absorb(array_record& global, const array_record& update, const array_record& base,
              int64_t tau, double weight) override;

 private:
  fed_async_options mix_;
};

}  // namespace stamen
