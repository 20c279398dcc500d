#include "runtime/strategy/fed_avg.hpp"

#include <algorithm>

#include "runtime/checkpoint.hpp"
#include "runtime/format.hpp"

namespace stamen {

namespace {

std::string config_or_empty(const config_record& c) {
  return c.empty() ? "(empty!)" : to_string(c);
}

class fed_avg_train_aggregator : public train_aggregator {
 public:
  fed_avg_train_aggregator(const fed_avg_options& opts, const array_record& current)
      : opts_(opts), sum_(current) {}

  expected<void> accept(const message& reply) override {
    auto arrays = reply_arrays(reply, opts_.arrayrecord_key);
    if (!arrays) return arrays.error();
    auto weight = reply_weight(reply, opts_.weighted_by_key);
    if (!weight) return weight.error();
    if (auto ok = sum_.add(**arrays, *weight); !ok) return ok;
    metrics_.add(reply);
    return {};
  }

  train_aggregate finish() override {
    train_aggregate out;
    if (sum_.count() == 0) return out;
    out.arrays = sum_.mean();
    if (opts_.train_metrics_aggr_fn && !metrics_.empty())
      out.metrics = opts_.train_metrics_aggr_fn(metrics_.in_node_order(), opts_.weighted_by_key);
    return out;
  }

 private:
  const fed_avg_options& opts_;
  weighted_sum sum_;
  reply_metrics metrics_;
};

class fed_avg_evaluate_aggregator : public evaluate_aggregator {
 public:
  explicit fed_avg_evaluate_aggregator(const fed_avg_options& opts) : opts_(opts) {}

  expected<void> accept(const message& reply) override {
    auto weight = reply_weight(reply, opts_.weighted_by_key);
    if (!weight) return weight.error();
    metrics_.add(reply);
    return {};
  }

  std::optional<metric_record> finish() override {
    if (metrics_.empty() || !opts_.evaluate_metrics_aggr_fn) return std::nullopt;
    return opts_.evaluate_metrics_aggr_fn(metrics_.in_node_order(), opts_.weighted_by_key);
  }

 private:
  const fed_avg_options& opts_;
  reply_metrics metrics_;
};

}  // namespace

metric_record weighted_average(const std::vector<metric_record>& records,
                               const std::string& weight_key) {
  metric_record out;
  double total = 0;
  std::vector<double> weights;
  for (auto& r : records) {
    double w = 0;
    if (auto* v = r.get(weight_key)) metric_as_double(*v, w);
    weights.push_back(w);
    total += w;
  }
  if (records.empty() || total <= 0) return out;
  for (auto& [k, v0] : records.front()) {
    if (k == weight_key) continue;
    if (std::holds_alternative<int64_t>(v0) || std::holds_alternative<double>(v0)) {
      double sum = 0;
      bool ok = true;
      for (size_t i = 0; i < records.size(); ++i) {
        double x;
        auto* v = records[i].get(k);
        if (!v || !metric_as_double(*v, x)) { ok = false; break; }
        sum += weights[i] * x;
      }
      if (ok) out.insert_or_assign(k, sum / total);
      continue;
    }
    // Lists: element-wise, when every record has a list of the same length.
    size_t len = std::visit([](auto& x) -> size_t {
      if constexpr (std::is_arithmetic_v<std::decay_t<decltype(x)>>) return 0;
      else return x.size();
    }, v0);
    std::vector<double> sum(len, 0.0);
    bool ok = true;
    for (size_t i = 0; i < records.size() && ok; ++i) {
      auto* v = records[i].get(k);
      if (!v) { ok = false; break; }
      std::visit([&](auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_arithmetic_v<T>) {
          ok = false;
        } else {
          if (x.size() != len) { ok = false; return; }
          for (size_t j = 0; j < len; ++j) sum[j] += weights[i] * static_cast<double>(x[j]);
        }
      }, *v);
    }
    if (!ok) continue;
    for (auto& s : sum) s /= total;
    out.insert_or_assign(k, std::move(sum));
  }
  return out;
}

fed_avg::fed_avg(fed_avg_options opts)
    : opts_(std::move(opts)), rng_(opts_.seed ? *opts_.seed : std::random_device{}()) {
  auto frac_ok = [](double f) { return f >= 0 && f <= 1; };
  if (!frac_ok(opts_.fraction_train) || !frac_ok(opts_.fraction_evaluate))
    throw std::invalid_argument("FedAvg fractions must lie in [0, 1]");
}

std::vector<std::string> fed_avg::summary(int num_rounds, const array_record& arrays,
                                          const config_record& train_config,
                                          const config_record& evaluate_config) const {
  return {
      "Starting " + name() + " strategy:",
      "    ├── Number of rounds: " + std::to_string(num_rounds),
      "    ├── ArrayRecord (" + format_double("%.2f", arrays.count_bytes() / 1e6) + " MB)",
      "    ├── ConfigRecord (train): " + config_or_empty(train_config),
      "    ├── ConfigRecord (evaluate): " + config_or_empty(evaluate_config),
      "    ├──> Sampling:",
      "    │       ├──Fraction: train (" + format_double("%.2f", opts_.fraction_train) + ") | evaluate (" +
          format_double("%5.2f", opts_.fraction_evaluate) + ")",
      "    │       ├──Minimum nodes: train (" + std::to_string(opts_.min_train_nodes) +
          ") | evaluate (" + std::to_string(opts_.min_evaluate_nodes) + ")",
      "    │       └──Minimum available nodes: " + std::to_string(opts_.min_available_nodes),
      "    └──> Keys in records:",
      "            ├── Weighted by: '" + opts_.weighted_by_key + "'",
      "            ├── ArrayRecord key: '" + opts_.arrayrecord_key + "'",
      "            └── ConfigRecord key: '" + opts_.configrecord_key + "'",
  };
}

std::vector<std::string> insert_settings(std::vector<std::string> summary,
                                         const std::string& title,
                                         const std::vector<std::string>& items) {
  std::vector<std::string> mine{"    ├──> " + title + ":"};
  for (size_t i = 0; i < items.size(); ++i)
    mine.push_back(std::string{"    │       "} + (i + 1 == items.size() ? "└── " : "├── ") +
                   items[i]);
  summary.insert(summary.begin() + (summary.empty() ? 0 : 1), mine.begin(), mine.end());
  return summary;
}

std::vector<message> fed_avg::configure(run_phase phase, double fraction, size_t min_nodes,
                                        int round, const array_record* arrays,
                                        config_record config, grid& g) {
  if (fraction == 0) return {};
  size_t available = g.wait_for_nodes(opts_.min_available_nodes, opts_.min_available_timeout_s);
  if (available < opts_.min_available_nodes)
    throw run_error(std::string{"configure_"} + to_string(phase) + ": only " +
                    std::to_string(available) + " of the " +
                    std::to_string(opts_.min_available_nodes) +
                    " nodes required by min_available_nodes are connected after waiting " +
                    format_double("%.0f", opts_.min_available_timeout_s) + "s");
  auto ids = g.node_ids();
  std::sort(ids.begin(), ids.end());  // sampling depends on the seed only
  size_t want = std::max(static_cast<size_t>(static_cast<double>(ids.size()) * fraction), min_nodes);
  want = std::min(want, ids.size());
  std::vector<uint64_t> sampled;
  std::sample(ids.begin(), ids.end(), std::back_inserter(sampled), want, rng_);
  events().on_sampled(round, phase, sampled.size(), ids.size());
  config.insert_or_assign("server-round", int64_t{round});
  record_dict content;
  if (arrays) content.insert_or_assign(opts_.arrayrecord_key, *arrays);
  content.insert_or_assign(opts_.configrecord_key, std::move(config));
  std::vector<message> out;
  out.reserve(sampled.size());
  for (auto id : sampled) {
    auto m = g.create_message(content, to_string(phase), id, std::to_string(round));
    out.push_back(std::move(*m));
  }
  return out;
}

std::vector<message> fed_avg::configure_train(int round, const array_record& arrays,
                                              config_record config, grid& g) {
  return configure(run_phase::train, opts_.fraction_train, opts_.min_train_nodes, round, &arrays,
                   std::move(config), g);
}

std::vector<message> fed_avg::configure_evaluate(int round, const array_record& arrays,
                                                 config_record config, grid& g) {
  return configure(run_phase::evaluate, opts_.fraction_evaluate, opts_.min_evaluate_nodes, round,
                   &arrays, std::move(config), g);
}

std::optional<std::string> fed_avg::reject_train_round(const phase_report& r) const {
  if (r.results < opts_.min_train_nodes)
    return "only " + std::to_string(r.results) + " valid result(s), fewer than min_train_nodes (" +
           std::to_string(opts_.min_train_nodes) + ")";
  if (!opts_.accept_failures && r.failures > 0)
    return std::to_string(r.failures) + " failure(s) and accept_failures is off";
  if (r.sampled > 0 &&
      static_cast<double>(r.results) / static_cast<double>(r.sampled) < opts_.min_completion_rate)
    return "completion rate " + format_double("%.2f", static_cast<double>(r.results) / static_cast<double>(r.sampled)) +
           " is under min_completion_rate (" + format_double("%.2f", opts_.min_completion_rate) + ")";
  return std::nullopt;
}

std::unique_ptr<train_aggregator> fed_avg::make_train_aggregator(int, const array_record& current) {
  return std::make_unique<fed_avg_train_aggregator>(opts_, current);
}

std::unique_ptr<evaluate_aggregator> fed_avg::make_evaluate_aggregator(int) {
  return std::make_unique<fed_avg_evaluate_aggregator>(opts_);
}

// The sampling RNG: a resumed run samples the nodes it would have.
void fed_avg::save_state(record_dict& out) const {
  out.insert_or_assign("fed_avg", config_record{{"rng", rng_state(rng_)}});
}

expected<void> fed_avg::restore_state(const record_dict& in) { return restore_rng(in, "fed_avg", "rng", rng_); }

}  // namespace stamen
