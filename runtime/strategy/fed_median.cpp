#include "runtime/strategy/fed_median.hpp"

#include <algorithm>

#include "runtime/strategy/reply_set.hpp"

namespace stamen {

double median_of(std::vector<double>& xs) {
  auto n = xs.size();
  auto mid = xs.begin() + static_cast<std::ptrdiff_t>(n / 2);
  std::nth_element(xs.begin(), mid, xs.end());
  if (n % 2 == 1) return *mid;
  double upper = *mid;
  double lower = *std::max_element(xs.begin(), mid);
  return (lower + upper) / 2;
}

std::vector<std::string> fed_median::summary(int num_rounds, const array_record& arrays,
                                             const config_record& train_config,
                                             const config_record& evaluate_config) const {
  return insert_settings(fed_avg::summary(num_rounds, arrays, train_config, evaluate_config),
                         "FedMedian settings", {"Memory: " + kept_replies_line(arrays)});
}

std::unique_ptr<train_aggregator> fed_median::make_train_aggregator(int,
                                                                    const array_record& current) {
  auto& o = options();
  return std::make_unique<collecting_aggregator>(
      reply_set{current, o.arrayrecord_key, o.weighted_by_key}, [&o](const reply_set& set) {
        train_aggregate agg;
        agg.arrays = set.coordinatewise(set.all(), median_of);
        if (o.train_metrics_aggr_fn)
          agg.metrics = o.train_metrics_aggr_fn(set.metrics_of(set.all()), o.weighted_by_key);
        return agg;
      });
}

}  // namespace stamen
