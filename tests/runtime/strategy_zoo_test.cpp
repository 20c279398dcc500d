// Every strategy, three rounds end to end on a scripted grid, against a
// reference written here from the paper's formula: plain loops in double,
// no code shared with the implementation. Three rounds, so that server
// state (momentum, moments, the adaptive clipping norm) is checked too.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "runtime/strategy/bulyan.hpp"
#include "runtime/strategy/dp_clipping.hpp"
#include "runtime/dp_mods.hpp"
#include "runtime/strategy/fed_avgm.hpp"
#include "runtime/strategy/fed_median.hpp"
#include "runtime/strategy/fed_opt.hpp"
#include "runtime/strategy/fed_prox.hpp"
#include "runtime/strategy/fed_trimmed_avg.hpp"
#include "runtime/strategy/multi_krum.hpp"
#include "runtime/strategy/q_fed_avg.hpp"
#include "tests/support/scripted_grid.hpp"

using namespace stamen;

namespace {

constexpr size_t num_nodes = 7;
constexpr int rounds = 3;

// The model, as the reference holds it: "w" (float32 on the wire) and "b" (float64).
struct model {
  std::vector<double> w = std::vector<double>(7), b = std::vector<double>(3);
};

model initial() {
  model m;
  for (size_t j = 0; j < m.w.size(); ++j) m.w[j] = static_cast<float>(0.1 * j - 0.2);
  for (size_t j = 0; j < m.b.size(); ++j) m.b[j] = 0.3 - 0.05 * j;
  return m;
}

array_record to_record(const model& m) {
  array_record r;
  std::vector<float> w(m.w.begin(), m.w.end());
  r.insert_or_assign("w", array::from_values(dtype::float32, {7}, w));
  r.insert_or_assign("b", array::from_values(dtype::float64, {3}, m.b));
  return r;
}

model from_record(const array_record& r) {
  model m;
  auto w = r.get("w")->to_vector<float>();
  m.w.assign(w.begin(), w.end());
  m.b = r.get("b")->to_vector<double>();
  return m;
}

// Node k's local training: a fixed, different step per node and round; node
// 7 is an outlier far from the rest (so that robust rules have work to do).
double step(uint64_t k, int round, size_t j, int which) {
  double s = 0.05 * static_cast<double>(k) * std::sin(0.37 * j + 1.1 * k + 0.5 * round + which);
  return k == 7 ? s + 3.0 : s;
}

model trained(const model& g, uint64_t k, int round) {
  model out = g;
  for (size_t j = 0; j < g.w.size(); ++j)
    out.w[j] = static_cast<float>(static_cast<float>(g.w[j]) + step(k, round, j, 0));
  for (size_t j = 0; j < g.b.size(); ++j) out.b[j] = g.b[j] + step(k, round, j, 1);
  return out;
}

double weight_of(uint64_t k) { return 10.0 * k; }
double loss_of(uint64_t k) { return 0.5 + 0.1 * k; }

// The ClientApp: train answers with trained(), evaluate with a metric.
std::shared_ptr<const client_app> app(std::vector<mod> mods = {},
                                      std::vector<config_record>* seen = nullptr) {
  auto a = std::make_shared<client_app>(std::move(mods));
  a->train([seen](const message& msg, context& ctx) {
    auto* config = msg.content().configs("config");
    if (seen) seen->push_back(*config);
    auto round = static_cast<int>(config_int(*config, "server-round"));
    auto g = from_record(*msg.content().arrays("arrays"));
    record_dict reply;
    reply.insert_or_assign("arrays", to_record(trained(g, ctx.node_id, round)));
    reply.insert_or_assign("metrics",
                           metric_record{{"train_loss", loss_of(ctx.node_id)},
                                         {"num-examples", static_cast<int64_t>(weight_of(ctx.node_id))}});
    return make_reply(msg, std::move(reply));
  });
  a->evaluate([](const message& msg, context& ctx) {
    record_dict reply;
    reply.insert_or_assign("metrics", metric_record{{"eval_acc", 0.1 * ctx.node_id},
                                                    {"num-examples", int64_t{5}}});
    return make_reply(msg, std::move(reply));
  });
  return a;
}

template <class Options>
Options base() {
  Options o;
  o.seed = 7;
  return o;
}

// Flattens a model (w then b) and back; the reference works on flat vectors.
std::vector<double> flat(const model& m) {
  std::vector<double> x = m.w;
  x.insert(x.end(), m.b.begin(), m.b.end());
  return x;
}
model unflat(const std::vector<double>& x) {
  model m;
  std::copy(x.begin(), x.begin() + 7, m.w.begin());
  std::copy(x.begin() + 7, x.end(), m.b.begin());
  for (auto& v : m.w) v = static_cast<float>(v);  // the global model stores w in float32
  return m;
}

// The updates the nodes send in `round` from global g, flat, node 1..n.
std::vector<std::vector<double>> replies(const model& g, int round) {
  std::vector<std::vector<double>> out;
  for (uint64_t k = 1; k <= num_nodes; ++k) out.push_back(flat(trained(g, k, round)));
  return out;
}

std::vector<double> weighted_mean(const std::vector<std::vector<double>>& xs,
                                  const std::vector<double>& weights) {
  std::vector<double> out(xs[0].size(), 0.0);
  double total = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    total += weights[k];
    for (size_t j = 0; j < out.size(); ++j) out[j] += weights[k] * xs[k][j];
  }
  for (auto& v : out) v /= total;
  return out;
}

std::vector<double> example_weights() {
  std::vector<double> w;
  for (uint64_t k = 1; k <= num_nodes; ++k) w.push_back(weight_of(k));
  return w;
}

// One round of the reference: global g (flat) and the replies to the next global.
using reference_round = std::function<std::vector<double>(int round, const std::vector<double>& g,
                                                          const std::vector<std::vector<double>>& xs)>;

void check_against(strategy& s, const reference_round& ref,
                   std::shared_ptr<const client_app> a = app()) {
  test::scripted_grid grid(num_nodes, std::move(a));
  auto result = s.start(grid, to_record(initial()), rounds, 10);
  BOOST_REQUIRE_EQUAL(result.train_rounds.size(), static_cast<size_t>(rounds));
  model g = initial();
  for (int r = 1; r <= rounds; ++r) {
    BOOST_TEST_REQUIRE(result.train_rounds[r - 1].results == num_nodes);
    g = unflat(ref(r, flat(g), replies(g, r)));
  }
  auto got = flat(from_record(result.arrays));
  auto want = flat(g);
  double err = 0, norm = 0;
  for (size_t j = 0; j < want.size(); ++j) {
    err += (got[j] - want[j]) * (got[j] - want[j]);
    norm += want[j] * want[j];
  }
  BOOST_TEST(std::sqrt(err / norm) <= 1e-6, s.name() << ": relative error " << std::sqrt(err / norm));
}

double coordinate_median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  size_t n = xs.size();
  return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

std::vector<double> column(const std::vector<std::vector<double>>& xs, size_t j) {
  std::vector<double> c;
  for (auto& x : xs) c.push_back(x[j]);
  return c;
}

double sq_dist(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t j = 0; j < a.size(); ++j) s += (a[j] - b[j]) * (a[j] - b[j]);
  return s;
}

// Krum scores (Blanchard et al.): sum over the n - f - 2 nearest others.
std::vector<size_t> krum_best(const std::vector<std::vector<double>>& xs, size_t f, size_t m) {
  size_t n = xs.size();
  std::vector<std::pair<double, size_t>> scores;
  for (size_t i = 0; i < n; ++i) {
    std::vector<double> d;
    for (size_t j = 0; j < n; ++j)
      if (j != i) d.push_back(sq_dist(xs[i], xs[j]));
    std::sort(d.begin(), d.end());
    double s = 0;
    for (size_t t = 0; t < std::max<size_t>(1, n - f - 2); ++t) s += d[t];
    scores.emplace_back(s, i);
  }
  std::sort(scores.begin(), scores.end());
  std::vector<size_t> out;
  for (size_t t = 0; t < m; ++t) out.push_back(scores[t].second);
  return out;
}

// g + min(1, C / ||x - g||) (x - g)
std::pair<std::vector<double>, bool> clipped(const std::vector<double>& x,
                                             const std::vector<double>& g, double c) {
  double norm = std::sqrt(sq_dist(x, g));
  double s = std::min(1.0, c / norm);
  std::vector<double> out(x.size());
  for (size_t j = 0; j < x.size(); ++j) out[j] = g[j] + s * (x[j] - g[j]);
  return {out, norm > c};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(strategy_zoo)

BOOST_AUTO_TEST_CASE(fedavg_is_the_weighted_mean) {
  fed_avg s(base<fed_avg_options>());
  check_against(s, [](int, auto&, auto& xs) { return weighted_mean(xs, example_weights()); });
}

BOOST_AUTO_TEST_CASE(fedavgm_keeps_server_momentum) {
  auto o = base<fed_avgm_options>();
  o.server_learning_rate = 0.7;
  o.server_momentum = 0.9;
  fed_avgm s(o);
  std::vector<double> v;
  check_against(s, [&v](int, const std::vector<double>& g, auto& xs) {
    auto mean = weighted_mean(xs, example_weights());
    std::vector<double> d(g.size()), out(g.size());
    for (size_t j = 0; j < g.size(); ++j) d[j] = g[j] - mean[j];
    if (v.empty()) v = d;
    else for (size_t j = 0; j < g.size(); ++j) v[j] = 0.9 * v[j] + d[j];
    for (size_t j = 0; j < g.size(); ++j) out[j] = g[j] - 0.7 * v[j];
    return out;
  });
}

BOOST_AUTO_TEST_CASE(fedprox_sends_proximal_mu_and_averages) {
  auto o = base<fed_prox_options>();
  o.proximal_mu = 0.25;
  fed_prox s(o);
  std::vector<config_record> seen;
  check_against(s, [](int, auto&, auto& xs) { return weighted_mean(xs, example_weights()); },
                app({}, &seen));
  BOOST_REQUIRE_EQUAL(seen.size(), num_nodes * rounds);
  for (auto& c : seen) BOOST_TEST(config_double(c, "proximal-mu") == 0.25);
}

// Reddi et al., Algorithm 2, with Δ = mean - g and m, v from zero.
void check_fed_opt(strategy& s, double eta, double b1, double b2, double tau,
                   std::function<double(double v, double d2)> second, bool bias_correction) {
  std::vector<double> m, v;
  int t = 0;
  check_against(s, [&](int, const std::vector<double>& g, auto& xs) {
    auto mean = weighted_mean(xs, example_weights());
    if (m.empty()) m.assign(g.size(), 0.0), v.assign(g.size(), 0.0);
    ++t;
    double lr = bias_correction ? eta * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t)) : eta;
    std::vector<double> out(g.size());
    for (size_t j = 0; j < g.size(); ++j) {
      double d = mean[j] - g[j];
      m[j] = b1 * m[j] + (1 - b1) * d;
      v[j] = second(v[j], d * d);
      out[j] = g[j] + lr * m[j] / (std::sqrt(v[j]) + tau);
    }
    return out;
  });
}

BOOST_AUTO_TEST_CASE(fedadagrad_follows_reddi_et_al) {
  fed_adagrad s(base<fed_adagrad_options>());
  check_fed_opt(s, 0.1, 0.0, 0.0, 1e-3, [](double v, double d2) { return v + d2; }, false);
}

BOOST_AUTO_TEST_CASE(fedadam_follows_reddi_et_al_with_adam_bias_correction) {
  fed_adam s(base<fed_adam_options>());
  check_fed_opt(s, 0.1, 0.9, 0.99, 1e-3, [](double v, double d2) { return 0.99 * v + 0.01 * d2; },
                true);
}

BOOST_AUTO_TEST_CASE(fedyogi_follows_reddi_et_al) {
  fed_yogi s(base<fed_yogi_options>());
  check_fed_opt(s, 0.01, 0.9, 0.99, 1e-3, [](double v, double d2) {
    double sign = v - d2 > 0 ? 1 : (v - d2 < 0 ? -1 : 0);
    return v - 0.01 * d2 * sign;
  }, false);
}

BOOST_AUTO_TEST_CASE(qfedavg_follows_li_et_al) {
  auto o = base<q_fed_avg_options>();
  o.client_learning_rate = 0.1;
  o.q = 0.2;
  q_fed_avg s(o);
  check_against(s, [](int, const std::vector<double>& g, auto& xs) {
    double L = 1 / 0.1, q = 0.2, h = 0;
    std::vector<double> delta(g.size(), 0.0);
    for (size_t k = 0; k < xs.size(); ++k) {
      double f = loss_of(k + 1) + 1e-10, norm2 = 0;
      for (size_t j = 0; j < g.size(); ++j) norm2 += std::pow(L * (g[j] - xs[k][j]), 2);
      for (size_t j = 0; j < g.size(); ++j) delta[j] += std::pow(f, q) * L * (g[j] - xs[k][j]);
      h += q * std::pow(f, q - 1) * norm2 + L * std::pow(f, q);
    }
    std::vector<double> out(g.size());
    for (size_t j = 0; j < g.size(); ++j) out[j] = g[j] - delta[j] / h;
    return out;
  });
}

BOOST_AUTO_TEST_CASE(fedmedian_is_the_coordinate_wise_median) {
  fed_median s(base<fed_avg_options>());
  check_against(s, [](int, const std::vector<double>& g, auto& xs) {
    std::vector<double> out(g.size());
    for (size_t j = 0; j < g.size(); ++j) out[j] = coordinate_median(column(xs, j));
    return out;
  });
}

BOOST_AUTO_TEST_CASE(fedtrimmedavg_cuts_beta_from_each_end) {
  auto o = base<fed_trimmed_avg_options>();
  o.beta = 0.3;  // 7 replies: 2 cut from each end
  fed_trimmed_avg s(o);
  check_against(s, [](int, const std::vector<double>& g, auto& xs) {
    std::vector<double> out(g.size());
    for (size_t j = 0; j < g.size(); ++j) {
      auto c = column(xs, j);
      std::sort(c.begin(), c.end());
      out[j] = (c[2] + c[3] + c[4]) / 3;
    }
    return out;
  });
}

BOOST_AUTO_TEST_CASE(krum_picks_the_most_central_update) {
  krum s(base<fed_avg_options>(), 1);
  check_against(s, [](int, auto&, auto& xs) { return xs[krum_best(xs, 1, 1)[0]]; });
}

BOOST_AUTO_TEST_CASE(multikrum_averages_the_best_scored_updates) {
  auto o = base<multi_krum_options>();
  o.num_malicious_nodes = 1;
  o.num_nodes_to_select = 3;
  multi_krum s(o);
  check_against(s, [](int, auto&, auto& xs) {
    std::vector<std::vector<double>> chosen;
    std::vector<double> w;
    for (auto i : krum_best(xs, 1, 3)) chosen.push_back(xs[i]), w.push_back(weight_of(i + 1));
    return weighted_mean(chosen, w);
  });
}

BOOST_AUTO_TEST_CASE(bulyan_trims_around_the_median_of_the_krum_selection) {
  auto o = base<bulyan_options>();
  o.num_malicious_nodes = 1;  // 7 = 4f + 3 replies
  bulyan s(o);
  check_against(s, [](int, const std::vector<double>& g, auto& xs) {
    size_t f = 1, theta = xs.size() - 2 * f, beta = theta - 2 * f;
    auto chosen = krum_best(xs, f, theta);
    std::sort(chosen.begin(), chosen.end());
    std::vector<double> out(g.size());
    for (size_t j = 0; j < g.size(); ++j) {
      std::vector<double> c;
      for (auto i : chosen) c.push_back(xs[i][j]);
      double med = coordinate_median(c);
      std::stable_sort(c.begin(), c.end(), [med](double a, double b) {
        return std::abs(a - med) < std::abs(b - med);
      });
      out[j] = std::accumulate(c.begin(), c.begin() + beta, 0.0) / beta;
    }
    return out;
  });
}

// McMahan et al. (2018): clip every update to C, then FedAvg (no noise).
void check_fixed_clipping(clipping_side side) {
  dp_fixed_clipping_options o;
  o.noise_multiplier = 0;
  o.clipping_norm = 0.15;
  o.seed = 3;
  dp_fixed_clipping s(std::make_unique<fed_avg>(base<fed_avg_options>()), side, o);
  auto a = side == clipping_side::client ? app({fixedclipping_mod}) : app();
  check_against(s, [](int, const std::vector<double>& g, auto& xs) {
    std::vector<std::vector<double>> cs;
    for (auto& x : xs) cs.push_back(clipped(x, g, 0.15).first);
    return weighted_mean(cs, example_weights());
  }, a);
}

BOOST_AUTO_TEST_CASE(dp_server_side_fixed_clipping_clips_each_update) {
  check_fixed_clipping(clipping_side::server);
}

BOOST_AUTO_TEST_CASE(dp_client_side_fixed_clipping_clips_on_the_clients) {
  check_fixed_clipping(clipping_side::client);
}

// Andrew et al. (2021): C follows the target quantile of unclipped updates.
void check_adaptive_clipping(clipping_side side) {
  dp_adaptive_clipping_options o;
  o.noise_multiplier = 0;
  o.initial_clipping_norm = 0.1;
  o.target_clipped_quantile = 0.5;
  o.clip_norm_lr = 0.2;
  o.seed = 3;
  dp_adaptive_clipping s(std::make_unique<fed_avg>(base<fed_avg_options>()), side, o);
  auto a = side == clipping_side::client ? app({adaptiveclipping_mod}) : app();
  double c = 0.1;
  check_against(s, [&c](int, const std::vector<double>& g, auto& xs) {
    std::vector<std::vector<double>> cs;
    double unclipped = 0;
    for (auto& x : xs) {
      auto [y, was_clipped] = clipped(x, g, c);
      cs.push_back(y);
      unclipped += was_clipped ? 0 : 1;
    }
    c *= std::exp(-0.2 * (unclipped / xs.size() - 0.5));
    return weighted_mean(cs, example_weights());
  }, a);
  BOOST_TEST(s.clipping_norm() == c, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(c != 0.1);
}

BOOST_AUTO_TEST_CASE(dp_server_side_adaptive_clipping_adapts_the_norm) {
  check_adaptive_clipping(clipping_side::server);
}

BOOST_AUTO_TEST_CASE(dp_client_side_adaptive_clipping_adapts_the_norm) {
  check_adaptive_clipping(clipping_side::client);
}

BOOST_AUTO_TEST_SUITE_END()
