#pragma once

#include <memory>
#include <stdexcept>

#include "runtime/strategy/strategy.hpp"

namespace stamen {

/// A strategy that wraps another (Flower's DP wrappers): every hook goes to
/// the wrapped strategy unless the wrapper overrides it.
class strategy_wrapper : public strategy {
 public:
  /// Wraps `inner`; throws std::invalid_argument when it is null.
  explicit strategy_wrapper(std::unique_ptr<strategy> inner) : inner_(std::move(inner)) {
    if (!inner_) throw std::invalid_argument("a strategy wrapper needs a strategy to wrap");
  }

  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override {
    return inner_->summary(num_rounds, arrays, train_config, evaluate_config);
  }
  std::vector<message> configure_train(int round, const array_record& arrays,
                                       config_record config, grid& g) override {
    return inner_->configure_train(round, arrays, std::move(config), g);
  }
  std::unique_ptr<train_aggregator> make_train_aggregator(int round,
                                                          const array_record& current) override {
    return inner_->make_train_aggregator(round, current);
  }
  std::vector<message> configure_evaluate(int round, const array_record& arrays,
                                          config_record config, grid& g) override {
    return inner_->configure_evaluate(round, arrays, std::move(config), g);
  }
  std::unique_ptr<evaluate_aggregator> make_evaluate_aggregator(int round) override {
    return inner_->make_evaluate_aggregator(round);
  }
  std::optional<std::string> reject_train_round(const phase_report& report) const override {
    return inner_->reject_train_round(report);
  }
  bool needs_individual_updates() const override { return inner_->needs_individual_updates(); }
  void save_state(record_dict& out) const override { inner_->save_state(out); }
  expected<void> restore_state(const record_dict& in) override { return inner_->restore_state(in); }
  array_record update_global(int round, const array_record& current,
                             array_record aggregated) override {
    return inner_->update_global(round, current, std::move(aggregated));
  }

  /// The wrapped strategy (e.g. to read its options).
  strategy& inner() { return *inner_; }
  /// The wrapped strategy (e.g. to read its options).
  const strategy& inner() const { return *inner_; }

 private:
  std::unique_ptr<strategy> inner_;
};

}  // namespace stamen
