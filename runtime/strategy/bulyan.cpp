#include "runtime/strategy/bulyan.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/strategy/fed_median.hpp"
#include "runtime/strategy/multi_krum.hpp"
#include "runtime/strategy/reply_set.hpp"

namespace stamen {

bulyan::bulyan(bulyan_options opts) : fed_avg(opts), f_(opts.num_malicious_nodes) {}

std::vector<std::string> bulyan::summary(int num_rounds, const array_record& arrays,
                                         const config_record& train_config,
                                         const config_record& evaluate_config) const {
  return insert_settings(fed_avg::summary(num_rounds, arrays, train_config, evaluate_config),
                         "Bulyan settings",
                         {"Number of malicious nodes: " + std::to_string(f_),
                          "Selection rule: select_multikrum",
                          "Memory: " + kept_replies_line(arrays)});
}

std::unique_ptr<train_aggregator> bulyan::make_train_aggregator(int, const array_record& current) {
  auto& o = options();
  size_t f = f_;
  return std::make_unique<collecting_aggregator>(
      reply_set{current, o.arrayrecord_key, o.weighted_by_key}, [&o, f](const reply_set& set) {
        train_aggregate agg;
        size_t n = set.size();
        if (n < 4 * f + 3) return agg;  // reject_train_round says why
        size_t theta = n - 2 * f, beta = theta - 2 * f;
        auto chosen = select_multi_krum(set, f, theta);
        std::sort(chosen.begin(), chosen.end());  // node order
        std::vector<double> copy;
        std::vector<size_t> order(theta);
        agg.arrays = set.coordinatewise(chosen, [&](std::vector<double>& xs) {
          copy = xs;
          double med = median_of(copy);
          // The beta values closest to the median; ties to the lower node id.
          std::iota(order.begin(), order.end(), 0);
          std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return std::abs(xs[a] - med) < std::abs(xs[b] - med);
          });
          double s = 0;
          for (size_t k = 0; k < beta; ++k) s += xs[order[k]];
          return s / static_cast<double>(beta);
        });
        if (o.train_metrics_aggr_fn)
          agg.metrics = o.train_metrics_aggr_fn(set.metrics_of(chosen), o.weighted_by_key);
        return agg;
      });
}

std::optional<std::string> bulyan::reject_train_round(const phase_report& r) const {
  if (auto why = fed_avg::reject_train_round(r)) return why;
  return too_few_replies(name(), "4f + 3", 4 * f_ + 3, f_, r.results);
}

}  // namespace stamen
