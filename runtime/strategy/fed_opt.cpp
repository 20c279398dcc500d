#include "runtime/strategy/fed_opt.hpp"

#include <cmath>
#include <stdexcept>

#include "runtime/checkpoint.hpp"
#include "runtime/format.hpp"

namespace stamen {

namespace {

void check(const fed_opt_options& o) {
  if (!(o.eta > 0)) throw std::invalid_argument("FedOpt: eta must be > 0");
  if (!(o.eta_l > 0)) throw std::invalid_argument("FedOpt: eta_l must be > 0");
  if (!(o.beta_1 >= 0 && o.beta_1 < 1)) throw std::invalid_argument("FedOpt: beta_1 must lie in [0, 1)");
  if (!(o.beta_2 >= 0 && o.beta_2 < 1)) throw std::invalid_argument("FedOpt: beta_2 must lie in [0, 1)");
  if (!(o.tau > 0)) throw std::invalid_argument("FedOpt: tau must be > 0");
}

template <class Options>
fed_opt_options as_fed_opt(const Options& in, double beta_1, double beta_2) {
  fed_opt_options o;
  static_cast<fed_avg_options&>(o) = in;
  o.eta = in.eta;
  o.eta_l = in.eta_l;
  o.tau = in.tau;
  o.beta_1 = beta_1;
  o.beta_2 = beta_2;
  return o;
}

}  // namespace

fed_opt::fed_opt(fed_opt_options opts) : fed_avg(opts), o_(std::move(opts)) { check(o_); }

std::vector<std::string> fed_opt::summary(int num_rounds, const array_record& arrays,
                                          const config_record& train_config,
                                          const config_record& evaluate_config) const {
  return insert_settings(
      fed_avg::summary(num_rounds, arrays, train_config, evaluate_config), "FedOpt settings",
      {"eta (" + format_double("%.6g", o_.eta) + ") | eta_l (" + format_double("%.6g", o_.eta_l) + ")",
       "beta_1 (" + format_double("%.6g", o_.beta_1) + ") | beta_2 (" +
           format_double("%.6g", o_.beta_2) + ")",
       "tau (" + format_double("%.6g", o_.tau) + ")"});
}

array_record fed_opt::update_global(int, const array_record& current, array_record aggregated) {
  if (m_.empty()) {
    m_.resize(aggregated.size());
    v_.resize(aggregated.size());
  }
  ++steps_;
  double lr = step_size(steps_);
  array_record out;
  size_t i = 0;
  for (auto& [key, agg] : aggregated) {
    auto& m = m_[i];
    auto& v = v_[i++];
    auto* old = current.get(key);
    if (old == nullptr || !is_floating(agg.type()) || old->type() != agg.type() ||
        old->numel() != agg.numel()) {
      out.insert_or_assign(key, agg);
      continue;
    }
    auto x = to_doubles(*old);
    auto y = to_doubles(agg);
    if (m.empty()) m.assign(x.size(), 0.0), v.assign(x.size(), 0.0);
    for (size_t j = 0; j < x.size(); ++j) {
      double d = y[j] - x[j];
      m[j] = o_.beta_1 * m[j] + (1 - o_.beta_1) * d;
      v[j] = second_moment(v[j], d);
      x[j] += lr * m[j] / (std::sqrt(v[j]) + o_.tau);
    }
    out.insert_or_assign(key, from_doubles(agg, x));
  }
  return out;
}

fed_adagrad::fed_adagrad(fed_adagrad_options o) : fed_opt(as_fed_opt(o, 0.0, 0.0)) {}

fed_adam::fed_adam(fed_adam_options o) : fed_opt(as_fed_opt(o, o.beta_1, o.beta_2)) {}

double fed_adam::second_moment(double v, double d) const {
  auto b2 = opt_options().beta_2;
  return b2 * v + (1 - b2) * d * d;
}

double fed_adam::step_size(int t) const {
  auto& o = opt_options();
  return o.eta * std::sqrt(1 - std::pow(o.beta_2, t)) / (1 - std::pow(o.beta_1, t));
}

fed_yogi::fed_yogi(fed_yogi_options o) : fed_opt(as_fed_opt(o, o.beta_1, o.beta_2)) {}

double fed_yogi::second_moment(double v, double d) const {
  double d2 = d * d;
  double diff = v - d2;
  double sign = diff > 0 ? 1.0 : (diff < 0 ? -1.0 : 0.0);
  return v - (1 - opt_options().beta_2) * d2 * sign;
}

// The optimizer's moments and step count, besides FedAvg's sampling RNG.
void fed_opt::save_state(record_dict& out) const {
  fed_avg::save_state(out);
  out.insert_or_assign("fed_opt", config_record{{"steps", static_cast<int64_t>(steps_)}});
  save_vectors(out, "fed_opt.m", m_);
  save_vectors(out, "fed_opt.v", v_);
}

expected<void> fed_opt::restore_state(const record_dict& in) {
  if (auto ok = fed_avg::restore_state(in); !ok) return ok;
  auto steps = state_value<int64_t>(in, "fed_opt", "steps");
  if (!steps) return steps.error();
  auto m = load_vectors(in, "fed_opt.m");
  if (!m) return m.error();
  auto v = load_vectors(in, "fed_opt.v");
  if (!v) return v.error();
  steps_ = static_cast<int>(*steps);
  m_ = std::move(*m);
  v_ = std::move(*v);
  return {};
}

}  // namespace stamen
