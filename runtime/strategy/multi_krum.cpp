#include "runtime/strategy/multi_krum.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "runtime/strategy/reply_set.hpp"

namespace stamen {

std::vector<size_t> select_multi_krum(const reply_set& set, size_t f, size_t m) {
  size_t n = set.size();
  auto d = set.squared_distances();
  size_t closest = n >= f + 3 ? n - f - 2 : 1;
  closest = std::min(closest, n - 1);
  std::vector<double> scores(n, 0.0), row;
  for (size_t i = 0; i < n; ++i) {
    row.clear();
    for (size_t j = 0; j < n; ++j)
      if (j != i) row.push_back(d[i * n + j]);
    std::sort(row.begin(), row.end());
    scores[i] = std::accumulate(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(closest), 0.0);
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // The set is in node order, so a stable sort breaks ties by node id.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  order.resize(std::min(m, n));
  return order;
}

multi_krum::multi_krum(multi_krum_options opts)
    : fed_avg(opts), f_(opts.num_malicious_nodes), m_(opts.num_nodes_to_select) {
  if (m_ == 0) throw std::invalid_argument("MultiKrum: num_nodes_to_select must be at least 1");
}

std::vector<std::string> multi_krum::summary(int num_rounds, const array_record& arrays,
                                             const config_record& train_config,
                                             const config_record& evaluate_config) const {
  return insert_settings(fed_avg::summary(num_rounds, arrays, train_config, evaluate_config),
                         "MultiKrum settings",
                         {"Number of malicious nodes: " + std::to_string(f_),
                          "Number of nodes to select: " + std::to_string(m_),
                          "Memory: " + kept_replies_line(arrays)});
}

std::unique_ptr<train_aggregator> multi_krum::make_train_aggregator(int,
                                                                    const array_record& current) {
  auto& o = options();
  size_t f = f_, m = m_;
  return std::make_unique<collecting_aggregator>(
      reply_set{current, o.arrayrecord_key, o.weighted_by_key}, [&o, f, m](const reply_set& set) {
        auto chosen = select_multi_krum(set, f, m);
        train_aggregate agg;
        agg.arrays = set.weighted_mean(chosen);
        if (o.train_metrics_aggr_fn)
          agg.metrics = o.train_metrics_aggr_fn(set.metrics_of(chosen), o.weighted_by_key);
        return agg;
      });
}

std::optional<std::string> too_few_replies(const std::string& rule, const char* formula,
                                           size_t needed, size_t f, size_t results) {
  if (results >= needed) return std::nullopt;
  return rule + " needs at least " + formula + " = " + std::to_string(needed) +
         " valid replies for num_malicious_nodes = " + std::to_string(f) + ", got " +
         std::to_string(results);
}

std::optional<std::string> multi_krum::reject_train_round(const phase_report& r) const {
  if (auto why = fed_avg::reject_train_round(r)) return why;
  return too_few_replies(name(), "2f + 3", 2 * f_ + 3, f_, r.results);
}

namespace {

multi_krum_options krum_options(fed_avg_options opts, size_t f) {
  multi_krum_options o;
  static_cast<fed_avg_options&>(o) = std::move(opts);
  o.num_malicious_nodes = f;
  o.num_nodes_to_select = 1;
  return o;
}

}  // namespace

krum::krum(fed_avg_options opts, size_t num_malicious_nodes)
    : multi_krum(krum_options(std::move(opts), num_malicious_nodes)) {}

std::vector<std::string> krum::summary(int num_rounds, const array_record& arrays,
                                       const config_record& train_config,
                                       const config_record& evaluate_config) const {
  return insert_settings(fed_avg::summary(num_rounds, arrays, train_config, evaluate_config),
                         "Krum settings",
                         {"Number of malicious nodes: " + std::to_string(num_malicious_nodes()),
                          "Memory: " + kept_replies_line(arrays)});
}

}  // namespace stamen
