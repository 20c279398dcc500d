#include "runtime/strategy/fed_trimmed_avg.hpp"

#include <algorithm>
#include <stdexcept>

#include "runtime/format.hpp"
#include "runtime/strategy/reply_set.hpp"

namespace stamen {

fed_trimmed_avg::fed_trimmed_avg(fed_trimmed_avg_options opts) : fed_avg(opts), beta_(opts.beta) {
  if (!(beta_ >= 0 && beta_ < 0.5))
    throw std::invalid_argument("FedTrimmedAvg: beta must lie in [0, 0.5), got " +
                                format_double("%g", beta_));
}

std::vector<std::string> fed_trimmed_avg::summary(int num_rounds, const array_record& arrays,
                                                  const config_record& train_config,
                                                  const config_record& evaluate_config) const {
  return insert_settings(fed_avg::summary(num_rounds, arrays, train_config, evaluate_config),
                         "FedTrimmedAvg settings",
                         {"beta: " + format_double("%g", beta_),
                          "Memory: " + kept_replies_line(arrays)});
}

std::unique_ptr<train_aggregator> fed_trimmed_avg::make_train_aggregator(
    int, const array_record& current) {
  auto& o = options();
  double beta = beta_;
  return std::make_unique<collecting_aggregator>(
      reply_set{current, o.arrayrecord_key, o.weighted_by_key}, [&o, beta](const reply_set& set) {
        size_t n = set.size();
        auto cut = static_cast<size_t>(beta * static_cast<double>(n));  // < n / 2
        train_aggregate agg;
        agg.arrays = set.coordinatewise(set.all(), [cut, n](std::vector<double>& xs) {
          std::sort(xs.begin(), xs.end());
          double s = 0;
          for (size_t k = cut; k < n - cut; ++k) s += xs[k];
          return s / static_cast<double>(n - 2 * cut);
        });
        if (o.train_metrics_aggr_fn)
          agg.metrics = o.train_metrics_aggr_fn(set.metrics_of(set.all()), o.weighted_by_key);
        return agg;
      });
}

}  // namespace stamen
