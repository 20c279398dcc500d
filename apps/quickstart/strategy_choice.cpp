// Which strategy the quickstart runs: the run config's `strategy`, with each
// strategy's parameters as run-config keys in kebab-case (Flower's names).
#include <cmath>
#include <set>
#include <stdexcept>

#include "apps/quickstart/quickstart.hpp"
#include "runtime/strategy/bulyan.hpp"
#include "runtime/strategy/dp_clipping.hpp"
#include "runtime/dp_mods.hpp"
#include "runtime/strategy/fed_avgm.hpp"
#include "runtime/strategy/fed_buff.hpp"
#include "runtime/strategy/fed_median.hpp"
#include "runtime/strategy/fed_opt.hpp"
#include "runtime/strategy/fed_prox.hpp"
#include "runtime/strategy/fed_trimmed_avg.hpp"
#include "runtime/format.hpp"
#include "runtime/strategy/multi_krum.hpp"
#include "runtime/strategy/q_fed_avg.hpp"
#include "runtime/secagg/secagg_plus_mod.hpp"
#include "runtime/secagg/secagg_plus_workflow.hpp"

namespace quickstart {

using namespace stamen;

namespace {

std::string strategy_name(const config_record& rc) {
  return rc.contains("strategy") ? config_string(rc, "strategy") : "fedavg";
}

bool secure(const config_record& rc) {
  return rc.contains("secure-aggregation") && config_string(rc, "secure-aggregation") == "secaggplus";
}

double or_default(const config_record& rc, const std::string& key, double fallback) {
  return rc.contains(key) ? config_double(rc, key) : fallback;
}

size_t count(const config_record& rc, const std::string& key, size_t fallback) {
  return rc.contains(key) ? static_cast<size_t>(config_int(rc, key)) : fallback;
}

fed_avg_options base_options(const config_record& rc) {
  fed_avg_options o;
  o.fraction_train = or_default(rc, "fraction-train", 1.0);
  o.fraction_evaluate = or_default(rc, "fraction-evaluate", 1.0);
  o.seed = static_cast<uint64_t>(rc.contains("seed") ? config_int(rc, "seed") : 42);
  if (rc.contains("round-timeout")) o.min_available_timeout_s = config_double(rc, "round-timeout");
  return o;
}

template <class Options>
Options with_base(const config_record& rc) {
  Options o;
  static_cast<fed_avg_options&>(o) = base_options(rc);
  return o;
}

// FedOpt's keys, each left at the strategy's own (Flower's) default when unset.
template <class Options>
Options fed_opt_options_from(const config_record& rc) {
  auto o = with_base<Options>(rc);
  o.eta = or_default(rc, "eta", o.eta);
  o.eta_l = or_default(rc, "eta-l", o.eta_l);
  o.tau = or_default(rc, "tau", o.tau);
  if constexpr (!std::is_same_v<Options, fed_adagrad_options>) {
    o.beta_1 = or_default(rc, "beta-1", o.beta_1);
    o.beta_2 = or_default(rc, "beta-2", o.beta_2);
  }
  return o;
}

// The asynchronous loop's keys (fedbuff, fedasync).
async_options async_options_from(const config_record& rc) {
  async_options a;
  a.concurrency = count(rc, "concurrency", a.concurrency);
  a.num_server_updates = static_cast<int>(count(rc, "num-server-updates", 10));
  a.max_seconds = or_default(rc, "max-seconds", a.max_seconds);
  a.evaluate_every = static_cast<int>(count(rc, "evaluate-every", 1));
  if (rc.contains("max-staleness")) a.max_staleness = config_int(rc, "max-staleness");
  auto kind = rc.contains("staleness") ? config_string(rc, "staleness") : "polynomial";
  a.staleness.k = kind == "constant"     ? staleness_fn::kind::constant
                  : kind == "hinge"      ? staleness_fn::kind::hinge
                                         : staleness_fn::kind::polynomial;
  a.staleness.exponent = or_default(rc, "staleness-exponent", a.staleness.exponent);
  a.staleness.hinge_a = or_default(rc, "hinge-a", a.staleness.hinge_a);
  a.staleness.hinge_b = or_default(rc, "hinge-b", a.staleness.hinge_b);
  if (rc.contains("sampling") && config_string(rc, "sampling") == "random")
    a.sampling = async_options::sampling_policy::random;
  return a;
}

std::unique_ptr<strategy> plain_strategy(const std::string& name, const config_record& rc) {
  if (name == "fedavg") return std::make_unique<fed_avg>(base_options(rc));
  if (name == "fedavgm") {
    auto o = with_base<fed_avgm_options>(rc);
    o.server_learning_rate = or_default(rc, "server-learning-rate", o.server_learning_rate);
    o.server_momentum = or_default(rc, "server-momentum", o.server_momentum);
    return std::make_unique<fed_avgm>(o);
  }
  if (name == "fedprox") {
    auto o = with_base<fed_prox_options>(rc);
    o.proximal_mu = or_default(rc, "proximal-mu", o.proximal_mu);
    return std::make_unique<fed_prox>(o);
  }
  if (name == "fedadagrad") return std::make_unique<fed_adagrad>(fed_opt_options_from<fed_adagrad_options>(rc));
  if (name == "fedadam") return std::make_unique<fed_adam>(fed_opt_options_from<fed_adam_options>(rc));
  if (name == "fedyogi") return std::make_unique<fed_yogi>(fed_opt_options_from<fed_yogi_options>(rc));
  if (name == "qfedavg") {
    auto o = with_base<q_fed_avg_options>(rc);
    o.client_learning_rate = or_default(rc, "client-learning-rate", or_default(rc, "lr", 0.01));
    o.q = or_default(rc, "q", o.q);
    return std::make_unique<q_fed_avg>(o);
  }
  if (name == "fedbuff") {
    fed_buff_options b;
    b.buffer_size = count(rc, "buffer-size", b.buffer_size);
    b.server_learning_rate = or_default(rc, "server-learning-rate", b.server_learning_rate);
    return std::make_unique<fed_buff>(base_options(rc), async_options_from(rc), b);
  }
  if (name == "fedasync") {
    fed_async_options m;
    m.mixing_alpha = or_default(rc, "mixing-alpha", m.mixing_alpha);
    return std::make_unique<fed_async>(base_options(rc), async_options_from(rc), m);
  }
  if (name == "fedmedian") return std::make_unique<fed_median>(base_options(rc));
  if (name == "fedtrimmedavg") {
    auto o = with_base<fed_trimmed_avg_options>(rc);
    o.beta = or_default(rc, "trimmed-beta", o.beta);
    return std::make_unique<fed_trimmed_avg>(o);
  }
  if (name == "krum") return std::make_unique<krum>(base_options(rc), count(rc, "num-malicious-nodes", 0));
  if (name == "multikrum") {
    auto o = with_base<multi_krum_options>(rc);
    o.num_malicious_nodes = count(rc, "num-malicious-nodes", 0);
    o.num_nodes_to_select = count(rc, "num-nodes-to-select", 1);
    return std::make_unique<multi_krum>(o);
  }
  if (name == "bulyan") {
    auto o = with_base<bulyan_options>(rc);
    o.num_malicious_nodes = count(rc, "num-malicious-nodes", 0);
    return std::make_unique<bulyan>(o);
  }
  throw run_error("unknown strategy '" + name + "'");
}

bool is_dp(const std::string& name) { return name.rfind("dp-", 0) == 0; }

// How many nodes a train round samples on `num_nodes` nodes, as FedAvg does.
size_t sampled(const config_record& rc, size_t num_nodes) {
  auto want = static_cast<size_t>(static_cast<double>(num_nodes) * or_default(rc, "fraction-train", 1.0));
  return std::min(std::max<size_t>(want, 2), num_nodes);
}

}  // namespace

std::optional<std::string> check_strategy_config(const config_record& rc, size_t num_nodes) {
  auto name = strategy_name(rc);
  auto inner = is_dp(name) ? (rc.contains("dp-strategy") ? config_string(rc, "dp-strategy") : "fedavg") : name;
  if (is_dp(inner)) return "run config key 'dp-strategy' = '" + inner + "' must name a strategy that is not itself a DP wrapper";
  size_t f = count(rc, "num-malicious-nodes", 0);
  size_t n = num_nodes ? sampled(rc, num_nodes) : 0;
  auto where = [&] {
    return std::to_string(n) + " nodes sampled per round (" + std::to_string(num_nodes) +
           " SuperNodes, fraction-train " + format_double("%g", or_default(rc, "fraction-train", 1.0)) + ")";
  };
  if (secure(rc)) {
    static const std::set<std::string> individual{"fedmedian", "fedtrimmedavg", "krum", "multikrum",
                                                  "bulyan", "fedbuff", "fedasync"};
    if (individual.count(inner))
      return "run config key 'secure-aggregation' = 'secaggplus' cannot serve strategy '" + inner +
             "': it needs each node's own update, which secure aggregation hides (use fedavg, "
             "fedavgm, fedprox, fedadagrad, fedadam, fedyogi, qfedavg or a dp-* wrapper of one)";
    auto o = secagg::options_from_config(rc);
    if (!o) return "run config: " + o.error().what;
    if (n)
      if (auto p = secagg::resolve(*o, n); !p) return "run config with " + where() + ": " + p.error().what;
  }
  if ((inner == "krum" || inner == "multikrum") && n && n < 2 * f + 3)
    return "run config key 'num-malicious-nodes' = " + std::to_string(f) + " is too large for " +
           inner + " with " + where() + ": Krum needs n >= 2f + 3";
  if (inner == "bulyan" && n && n < 4 * f + 3)
    return "run config key 'num-malicious-nodes' = " + std::to_string(f) +
           " is too large for bulyan with " + where() + ": Bulyan needs n >= 4f + 3";
  if (inner == "multikrum" && n && count(rc, "num-nodes-to-select", 1) > n)
    return "run config key 'num-nodes-to-select' = " +
           std::to_string(count(rc, "num-nodes-to-select", 1)) + " exceeds the " + where();
  if (name == "dp-server-adaptive" || name == "dp-client-adaptive") {
    double z = or_default(rc, "noise-multiplier", 0);
    double m = static_cast<double>(count(rc, "num-sampled-clients", 0));
    if (m == 0) m = static_cast<double>(n);
    if (m > 0 && z > 0) {
      double sigma_b = or_default(rc, "clipped-count-stddev", m / 20);
      if (z >= 2 * sigma_b)
        return "run config key 'noise-multiplier' = " + format_double("%g", z) +
               " must be below 2 * clipped-count-stddev = " + format_double("%g", 2 * sigma_b) +
               " (clipped-count-stddev defaults to the sampled clients / 20)";
    }
  }
  return std::nullopt;
}

// The strategy the run config names, before any workflow is set on it.
std::unique_ptr<strategy> make_plain_or_dp_strategy(const config_record& rc);

std::unique_ptr<strategy> make_strategy(const config_record& rc) {
  auto s = make_plain_or_dp_strategy(rc);
  if (secure(rc)) {
    try {
      s->set_train_workflow(std::make_shared<secagg_plus_workflow>(*secagg::options_from_config(rc)));
    } catch (const std::invalid_argument& e) {
      throw run_error(std::string("secure aggregation: ") + e.what());
    }
  }
  return s;
}

std::unique_ptr<strategy> make_plain_or_dp_strategy(const config_record& rc) {
  auto name = strategy_name(rc);
  if (auto why = check_strategy_config(rc, 0)) throw run_error(*why);
  try {
    if (!is_dp(name)) return plain_strategy(name, rc);
    auto inner = plain_strategy(rc.contains("dp-strategy") ? config_string(rc, "dp-strategy") : "fedavg", rc);
    auto side = name == "dp-server-fixed" || name == "dp-server-adaptive" ? clipping_side::server
                                                                          : clipping_side::client;
    auto seed = static_cast<uint64_t>(rc.contains("seed") ? config_int(rc, "seed") : 42);
    if (name == "dp-server-fixed" || name == "dp-client-fixed") {
      dp_fixed_clipping_options o;
      o.noise_multiplier = or_default(rc, "noise-multiplier", 0);
      o.clipping_norm = or_default(rc, "clipping-norm", 1);
      o.num_sampled_clients = count(rc, "num-sampled-clients", 0);
      o.seed = seed;
      return std::make_unique<dp_fixed_clipping>(std::move(inner), side, o);
    }
    if (name == "dp-server-adaptive" || name == "dp-client-adaptive") {
      dp_adaptive_clipping_options o;
      o.noise_multiplier = or_default(rc, "noise-multiplier", 0);
      o.num_sampled_clients = count(rc, "num-sampled-clients", 0);
      o.initial_clipping_norm = or_default(rc, "initial-clipping-norm", o.initial_clipping_norm);
      o.target_clipped_quantile = or_default(rc, "target-clipped-quantile", o.target_clipped_quantile);
      o.clip_norm_lr = or_default(rc, "clip-norm-lr", o.clip_norm_lr);
      if (rc.contains("clipped-count-stddev")) o.clipped_count_stddev = config_double(rc, "clipped-count-stddev");
      o.seed = seed;
      return std::make_unique<dp_adaptive_clipping>(std::move(inner), side, o);
    }
  } catch (const std::invalid_argument& e) {
    throw run_error("strategy '" + name + "': " + e.what());
  }
  throw run_error("unknown strategy '" + name + "'");
}

std::vector<stamen::mod> client_mods(const config_record& rc, uint64_t node_id) {
  std::vector<stamen::mod> mods;
  auto name = strategy_name(rc);
  // Outermost: the DP mods clip (and noise) the update before it is masked.
  if (secure(rc)) mods.push_back(secaggplus_mod);
  if (name == "dp-client-fixed") mods.push_back(fixedclipping_mod);
  if (name == "dp-client-adaptive") mods.push_back(adaptiveclipping_mod);
  if (rc.contains("local-dp-epsilon")) {
    // Innermost, so that the central DP mods see the locally noised update.
    local_dp_options o;
    o.epsilon = config_double(rc, "local-dp-epsilon");
    o.delta = or_default(rc, "local-dp-delta", o.delta);
    o.sensitivity = or_default(rc, "local-dp-sensitivity", o.sensitivity);
    o.clipping_norm = or_default(rc, "local-dp-clipping-norm", o.clipping_norm);
    o.seed = static_cast<uint64_t>(rc.contains("seed") ? config_int(rc, "seed") : 42) + node_id;
    mods.push_back(local_dp_mod(o));
  }
  return mods;
}

}  // namespace quickstart
