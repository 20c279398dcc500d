// A strategy of your own, in your app, from the helpers FedAvg uses.
// NormBoundedAvg (Sun et al., 2019, "Can you really backdoor federated
// learning?"): FedAvg over the replies whose update w_k - w is at most
// `bound` in L2 norm; longer updates are refused, with the reason counted
// and logged like any other failure. Streams as FedAvg does: O(model).
#pragma once

#include <cmath>

#include "runtime/strategy/array_fold.hpp"
#include "runtime/strategy/fed_avg.hpp"

class norm_bounded_avg : public stamen::fed_avg {
 public:
  norm_bounded_avg(stamen::fed_avg_options opts, double bound)
      : fed_avg(std::move(opts)), bound_(bound) {}

  std::string name() const override { return "NormBoundedAvg"; }

  std::vector<std::string> summary(int rounds, const stamen::array_record& arrays,
                                   const stamen::config_record& train,
                                   const stamen::config_record& evaluate) const override {
    return stamen::insert_settings(fed_avg::summary(rounds, arrays, train, evaluate),
                                   "NormBoundedAvg settings",
                                   {"Bound: " + std::to_string(bound_)});
  }

  std::unique_ptr<stamen::train_aggregator> make_train_aggregator(
      int, const stamen::array_record& current) override {
    return std::make_unique<aggregator>(current, bound_, options());
  }

 private:
  struct aggregator : stamen::train_aggregator {
    aggregator(stamen::array_record current, double bound, const stamen::fed_avg_options& o)
        : current_(std::move(current)), sum_(current_), bound_(bound), o_(o) {}

    stamen::expected<void> accept(const stamen::message& reply) override {
      // Validate as FedAvg does: the ArrayRecord, the weight, the layout.
      auto arrays = stamen::reply_arrays(reply, o_.arrayrecord_key);
      if (!arrays) return arrays.error();
      auto weight = stamen::reply_weight(reply, o_.weighted_by_key);
      if (!weight) return weight.error();
      if (auto ok = stamen::check_layout(**arrays, current_); !ok) return ok;
      double norm2 = 0;
      auto global = current_.begin();
      for (auto& [key, a] : **arrays) {
        auto w = stamen::to_doubles((global++)->second), wk = stamen::to_doubles(a);
        for (size_t j = 0; j < w.size(); ++j) norm2 += (wk[j] - w[j]) * (wk[j] - w[j]);
      }
      if (!(std::sqrt(norm2) <= bound_))  // NaN fails here too
        return stamen::fail(stamen::errc::invalid_message,
                            "update norm " + std::to_string(std::sqrt(norm2)) +
                                " exceeds the bound " + std::to_string(bound_));
      if (auto ok = sum_.add(**arrays, *weight); !ok) return ok;  // refuses NaN/Inf
      metrics_.add(reply);
      return {};
    }

    stamen::train_aggregate finish() override {
      stamen::train_aggregate out;
      if (sum_.count() == 0) return out;
      out.arrays = sum_.mean();
      if (!metrics_.empty())
        out.metrics = stamen::weighted_average(metrics_.in_node_order(), o_.weighted_by_key);
      return out;
    }

    stamen::array_record current_;
    stamen::weighted_sum sum_;
    double bound_;
    const stamen::fed_avg_options& o_;
    stamen::reply_metrics metrics_;
  };

  double bound_;
};
