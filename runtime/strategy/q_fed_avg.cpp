#include "runtime/strategy/q_fed_avg.hpp"

#include <cmath>
#include <stdexcept>

#include "runtime/format.hpp"

namespace stamen {

namespace {

class q_fed_avg_aggregator : public train_aggregator {
 public:
  q_fed_avg_aggregator(const q_fed_avg_options& o, const array_record& current)
      : o_(o), current_(current) {
    for (auto& [k, a] : current_) {
      sums_.emplace_back(static_cast<size_t>(a.numel()));
      w_.push_back(to_doubles(a));  // read once, not twice per reply
    }
  }

  expected<void> accept(const message& reply) override {
    auto arrays = reply_arrays(reply, o_.arrayrecord_key);
    if (!arrays) return arrays.error();
    if (auto w = reply_weight(reply, o_.weighted_by_key); !w) return w.error();
    if (auto ok = check_layout(**arrays, current_); !ok) return ok;
    if (auto ok = check_finite(**arrays); !ok) return ok;
    auto loss = reply_metric(reply, o_.train_loss_key);
    if (!loss) return fail(errc::invalid_message, "QFedAvg needs the training loss: " + loss.error().what);
    if (*loss < 0)
      return fail(errc::invalid_message, "training loss '" + o_.train_loss_key +
                                             "' is negative (" + format_double("%g", *loss) + ")");
    double L = 1.0 / o_.client_learning_rate;
    double f = *loss + 1e-10;
    double fq = std::pow(f, o_.q);
    // Two passes over the reply: ||Δ_k||² first (h_k needs it), then the fold.
    double norm2 = 0;
    std::vector<double> wk;
    size_t i = 0;
    for (auto& [k, a] : **arrays) {
      auto& w = w_[i++];
      wk = to_doubles(a);
      for (size_t j = 0; j < w.size(); ++j) {
        double d = L * (w[j] - wk[j]);
        norm2 += d * d;
      }
    }
    i = 0;
    for (auto& [k, a] : **arrays) {
      auto& w = w_[i];
      auto& s = sums_[i++];
      wk = to_doubles(a);
      for (size_t j = 0; j < w.size(); ++j) s[j] += fq * L * (w[j] - wk[j]);
    }
    h_ += o_.q * std::pow(f, o_.q - 1) * norm2 + L * fq;
    ++count_;
    metrics_.add(reply);
    return {};
  }

  train_aggregate finish() override {
    train_aggregate out;
    if (count_ == 0) return out;
    out.arrays.emplace();
    size_t i = 0;
    for (auto& [k, a] : current_) {
      auto w = w_[i];
      auto& s = sums_[i++];
      for (size_t j = 0; j < w.size(); ++j) w[j] -= s[j] / h_;
      out.arrays->insert_or_assign(k, from_doubles(a, w));
    }
    if (o_.train_metrics_aggr_fn && !metrics_.empty())
      out.metrics = o_.train_metrics_aggr_fn(metrics_.in_node_order(), o_.weighted_by_key);
    return out;
  }

 private:
  const q_fed_avg_options& o_;
  array_record current_;
  std::vector<std::vector<double>> w_;  ///< the current arrays, as doubles
  std::vector<double_buffer> sums_;
  double h_ = 0;
  size_t count_ = 0;
  reply_metrics metrics_;
};

}  // namespace

q_fed_avg::q_fed_avg(q_fed_avg_options opts) : fed_avg(opts), q_(std::move(opts)) {
  if (!(q_.client_learning_rate > 0))
    throw std::invalid_argument("QFedAvg: client_learning_rate must be > 0");
  if (!(q_.q >= 0)) throw std::invalid_argument("QFedAvg: q must be >= 0");
}

std::vector<std::string> q_fed_avg::summary(int num_rounds, const array_record& arrays,
                                            const config_record& train_config,
                                            const config_record& evaluate_config) const {
  return insert_settings(fed_avg::summary(num_rounds, arrays, train_config, evaluate_config),
                         "q-FedAvg settings",
                         {"client_learning_rate: " + format_double("%g", q_.client_learning_rate),
                          "q: " + format_double("%g", q_.q),
                          "train_loss_key: '" + q_.train_loss_key + "'"});
}

std::unique_ptr<train_aggregator> q_fed_avg::make_train_aggregator(int,
                                                                   const array_record& current) {
  return std::make_unique<q_fed_avg_aggregator>(q_, current);
}

}  // namespace stamen
