#include "runtime/strategy/fed_avgm.hpp"

#include <iterator>

#include "runtime/checkpoint.hpp"
#include "runtime/format.hpp"

namespace stamen {

namespace {

template <class T>
std::vector<double> as_doubles(const array& a) {
  auto xs = a.to_vector<T>();
  return {xs.begin(), xs.end()};
}

template <class T>
array from_doubles(const array& like, const std::vector<double>& xs) {
  return array::from_values(like.type(), like.shape(), std::vector<T>(xs.begin(), xs.end()));
}

bool steppable(dtype t) { return t == dtype::float32 || t == dtype::float64; }

}  // namespace

fed_avgm::fed_avgm(fed_avgm_options opts)
    : fed_avg(opts),
      server_learning_rate_(opts.server_learning_rate),
      server_momentum_(opts.server_momentum) {}

std::vector<std::string> fed_avgm::summary(int num_rounds, const array_record& arrays,
                                           const config_record& train_config,
                                           const config_record& evaluate_config) const {
  bool on = server_momentum_ != 0.0 || server_learning_rate_ != 1.0;
  return insert_settings(fed_avg::summary(num_rounds, arrays, train_config, evaluate_config),
                         "FedAvgM settings",
                         {std::string{"Server optimization: "} + (on ? "ON" : "OFF"),
                          "Server learning rate: " + format_double("%g", server_learning_rate_),
                          "Server Momentum: " + format_double("%g", server_momentum_)});
}

array_record fed_avgm::update_global(int, const array_record& current, array_record aggregated) {
  if (server_momentum_ == 0.0 && server_learning_rate_ == 1.0) return aggregated;
  bool first = momentum_.empty();
  if (first) momentum_.resize(aggregated.size());
  array_record out;
  size_t i = 0;
  for (auto& [key, agg] : aggregated) {
    auto* old = current.get(key);
    auto& v = momentum_[i++];
    if (old == nullptr || !steppable(agg.type()) || old->type() != agg.type()) {
      out.insert_or_assign(key, agg);
      continue;
    }
    bool f64 = agg.type() == dtype::float64;
    auto x = f64 ? as_doubles<double>(*old) : as_doubles<float>(*old);
    auto y = f64 ? as_doubles<double>(agg) : as_doubles<float>(agg);
    std::vector<double> d(x.size());
    for (size_t j = 0; j < x.size(); ++j) d[j] = x[j] - y[j];  // updates are minus gradients
    if (server_momentum_ > 0.0) {
      if (first) v = d;
      else
        for (size_t j = 0; j < v.size(); ++j) v[j] = server_momentum_ * v[j] + d[j];
      d = v;
    }
    for (size_t j = 0; j < x.size(); ++j) x[j] -= server_learning_rate_ * d[j];
    out.insert_or_assign(key, f64 ? from_doubles<double>(agg, x) : from_doubles<float>(agg, x));
  }
  return out;
}

// The momentum buffer, besides FedAvg's sampling RNG.
void fed_avgm::save_state(record_dict& out) const {
  fed_avg::save_state(out);
  save_vectors(out, "fedavgm.momentum", momentum_);
}

expected<void> fed_avgm::restore_state(const record_dict& in) {
  if (auto ok = fed_avg::restore_state(in); !ok) return ok;
  auto m = load_vectors(in, "fedavgm.momentum");
  if (!m) return m.error();
  momentum_ = std::move(*m);
  return {};
}

}  // namespace stamen
