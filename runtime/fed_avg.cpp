#include "runtime/fed_avg.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/format.hpp"

namespace stamen {

namespace {

std::string config_or_empty(const config_record& c) {
  return c.empty() ? "(empty!)" : to_string(c);
}

// --- the running sum ------------------------------------------------------

// Values are folded in blocks small enough to stay in L1: each block is first
// checked for NaN/Inf, then added, so the reply's bytes are streamed from
// memory once and a bad value is never added.
constexpr size_t block = 2048;

template <class T>
bool block_is_finite(const T* x, size_t n) {
  if constexpr (std::is_same_v<T, float>) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
      uint32_t bits;
      std::memcpy(&bits, x + i, 4);
      bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
  } else if constexpr (std::is_same_v<T, double>) {
    uint64_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
      uint64_t bits;
      std::memcpy(&bits, x + i, 8);
      bad |= static_cast<uint64_t>((bits & 0x7ff0000000000000ull) == 0x7ff0000000000000ull);
    }
    return bad == 0;
  } else {
    return true;
  }
}

// sum += w * x; on a non-finite value, takes back what it added and fails.
template <class T>
bool fold(double* sum, const std::byte* raw, size_t n, double w) {
  auto* x = reinterpret_cast<const T*>(raw);  // buffers are 8-byte aligned
  for (size_t b = 0; b < n; b += block) {
    size_t len = std::min(block, n - b);
    if (!block_is_finite(x + b, len)) {
      // Rare path: subtracting back is exact to rounding, far below 1e-12.
      for (size_t i = 0; i < b; ++i) sum[i] -= w * static_cast<double>(x[i]);
      return false;
    }
    for (size_t i = b; i < b + len; ++i) sum[i] += w * static_cast<double>(x[i]);
  }
  return true;
}

bool fold_any(dtype t, double* sum, const std::byte* raw, size_t n, double w) {
  switch (t) {
    case dtype::float32: return fold<float>(sum, raw, n, w);
    case dtype::float64: return fold<double>(sum, raw, n, w);
    case dtype::int64: return fold<int64_t>(sum, raw, n, w);
    case dtype::int32: return fold<int32_t>(sum, raw, n, w);
    case dtype::int16: return fold<int16_t>(sum, raw, n, w);
    case dtype::int8: return fold<int8_t>(sum, raw, n, w);
    case dtype::uint8:
    case dtype::bool_: return fold<uint8_t>(sum, raw, n, w);
    default: return false;
  }
}

// Zeroed doubles, allocated like message buffers (huge pages when large).
class running_sum {
 public:
  explicit running_sum(size_t n) : n_(n) {
    auto [buf, raw] = buffer::allocate(n * sizeof(double));
    buf_ = std::move(buf);
    data_ = reinterpret_cast<double*>(raw);
  }
  double* data() { return data_; }
  const double* data() const { return data_; }
  size_t size() const { return n_; }
  double operator[](size_t i) const { return data_[i]; }

 private:
  buffer buf_;
  double* data_;
  size_t n_;
};

template <class T>
array finish_as(dtype t, const std::vector<int64_t>& shape, const running_sum& sum,
                double total) {
  auto [buf, out] = buffer::allocate(sum.size() * sizeof(T));
  auto* y = reinterpret_cast<T*>(out);
  for (size_t i = 0; i < sum.size(); ++i) {
    double v = sum[i] / total;
    if constexpr (std::is_floating_point_v<T>)
      y[i] = static_cast<T>(v);
    else
      y[i] = static_cast<T>(std::llround(v));
  }
  return *array::make(t, shape, buf);
}

array finish_any(const array& like, const running_sum& sum, double total) {
  switch (like.type()) {
    case dtype::float32: return finish_as<float>(like.type(), like.shape(), sum, total);
    case dtype::float64: return finish_as<double>(like.type(), like.shape(), sum, total);
    case dtype::int64: return finish_as<int64_t>(like.type(), like.shape(), sum, total);
    case dtype::int32: return finish_as<int32_t>(like.type(), like.shape(), sum, total);
    case dtype::int16: return finish_as<int16_t>(like.type(), like.shape(), sum, total);
    case dtype::int8: return finish_as<int8_t>(like.type(), like.shape(), sum, total);
    default: return finish_as<uint8_t>(like.type(), like.shape(), sum, total);
  }
}

bool aggregatable(dtype t) { return t != dtype::float16 && t != dtype::bfloat16; }

const metric_record* first_metrics(const message& reply) {
  for (auto& [name, rec] : reply.content())
    if (auto* m = std::get_if<metric_record>(&rec)) return m;
  return nullptr;
}

// Metric records keyed by the node that sent them. Aggregated in node order,
// not arrival order, so that the same replies give the same bits whatever
// order the threads delivered them in.
class metric_records {
 public:
  void add(const message& reply) {
    if (auto* m = first_metrics(reply)) records_.emplace_back(reply.meta().src_node_id, *m);
  }
  bool empty() const { return records_.empty(); }
  std::vector<metric_record> in_node_order() {
    std::stable_sort(records_.begin(), records_.end(),
                     [](auto& a, auto& b) { return a.first < b.first; });
    std::vector<metric_record> out;
    out.reserve(records_.size());
    for (auto& [node, m] : records_) out.push_back(std::move(m));
    return out;
  }

 private:
  std::vector<std::pair<uint64_t, metric_record>> records_;
};

class fed_avg_train_aggregator : public train_aggregator {
 public:
  fed_avg_train_aggregator(const fed_avg_options& opts, const array_record& current)
      : opts_(opts), layout_(current) {}

  expected<void> accept(const message& reply) override {
    auto& key = opts_.arrayrecord_key;
    auto* arrays = reply.content().arrays(key);
    if (arrays == nullptr) return fail(errc::invalid_message, "no ArrayRecord '" + key + "'");
    auto weight = reply_weight(reply, opts_.weighted_by_key);
    if (!weight) return weight.error();
    if (layout_.empty() && sums_.empty()) layout_ = *arrays;  // no initial arrays given
    if (auto ok = check_layout(*arrays); !ok) return ok;
    if (sums_.empty())
      for (auto& [k, a] : layout_) sums_.push_back(running_sum(static_cast<size_t>(a.numel())));
    size_t i = 0;
    for (auto& [k, a] : *arrays) {
      if (!fold_any(a.type(), sums_[i].data(), a.data(), sums_[i].size(), *weight)) {
        for (size_t j = 0; j < i; ++j) unfold(j, *std::next(arrays->begin(), j), *weight);
        return fail(errc::invalid_message, "array '" + k + "' holds NaN or Inf");
      }
      ++i;
    }
    total_ += *weight;
    metrics_.add(reply);
    return {};
  }

  train_aggregate finish() override {
    train_aggregate out;
    if (total_ <= 0) return out;
    array_record result;
    size_t i = 0;
    for (auto& [k, a] : layout_) result.insert_or_assign(k, finish_any(a, sums_[i++], total_));
    out.arrays = std::move(result);
    if (opts_.train_metrics_aggr_fn && !metrics_.empty())
      out.metrics = opts_.train_metrics_aggr_fn(metrics_.in_node_order(), opts_.weighted_by_key);
    return out;
  }

 private:
  expected<void> check_layout(const array_record& arrays) const {
    if (arrays.size() != layout_.size())
      return fail(errc::shape_mismatch, "ArrayRecord has " + std::to_string(arrays.size()) +
                                            " arrays, the global model " +
                                            std::to_string(layout_.size()));
    auto it = layout_.begin();
    for (auto& [k, a] : arrays) {
      auto& [want_k, want] = *it++;
      if (k != want_k)
        return fail(errc::shape_mismatch, "array '" + k + "' where the global model has '" +
                                              want_k + "'");
      if (a.type() != want.type() || a.shape() != want.shape())
        return fail(errc::shape_mismatch, "array '" + k + "' is " + a.describe() +
                                              ", the global model's is " + want.describe());
      if (!aggregatable(a.type()))
        return fail(errc::shape_mismatch, "array '" + k + "': FedAvg does not average " +
                                              std::string{to_string(a.type())});
    }
    return {};
  }

  void unfold(size_t i, const std::pair<std::string, array>& entry, double w) {
    // Re-folding with -w subtracts what an earlier, finite array added.
    fold_any(entry.second.type(), sums_[i].data(), entry.second.data(), sums_[i].size(), -w);
  }

  const fed_avg_options& opts_;
  array_record layout_;
  std::vector<running_sum> sums_;
  double total_ = 0;
  metric_records metrics_;
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
  metric_records metrics_;
};

}  // namespace

expected<double> reply_weight(const message& reply, const std::string& key) {
  for (auto& [name, rec] : reply.content()) {
    auto* m = std::get_if<metric_record>(&rec);
    if (m == nullptr) continue;
    auto* v = m->get(key);
    if (v == nullptr) continue;
    double w;
    if (!metric_as_double(*v, w))
      return fail(errc::invalid_message, "weight '" + key + "' is a list");
    if (!std::isfinite(w) || w <= 0)
      return fail(errc::invalid_message, "weight '" + key + "' must be positive, got " +
                                             format_double("%g", w));
    return w;
  }
  return fail(errc::invalid_message, "no MetricRecord holds the weight '" + key + "'");
}

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

}  // namespace stamen
