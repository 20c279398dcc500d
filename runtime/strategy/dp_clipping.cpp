#include "runtime/strategy/dp_clipping.hpp"

#include <functional>
#include <stdexcept>

#include "runtime/strategy/array_fold.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/strategy/differential_privacy.hpp"
#include "runtime/strategy/fed_avg.hpp"
#include "runtime/format.hpp"

namespace stamen {

namespace {

// Clips each reply on the server (or reads the client's norm bit), hands it
// to the wrapped strategy's aggregator, and counts what it accepted.
class dp_aggregator : public train_aggregator {
 public:
  using finish_fn = std::function<void(train_aggregate&, size_t unclipped, size_t accepted)>;

  dp_aggregator(std::unique_ptr<train_aggregator> inner, array_record current,
                std::optional<double> server_clip, bool read_norm_bits, finish_fn finish)
      : inner_(std::move(inner)),
        current_(std::move(current)),
        server_clip_(server_clip),
        read_norm_bits_(read_norm_bits),
        finish_(std::move(finish)) {}

  expected<void> accept(const message& reply) override {
    bool unclipped = true;
    if (server_clip_) {
      message copy = reply;  // arrays are shared; only clipped ones are new
      for (auto& [name, rec] : copy.content()) {
        auto* arrays = std::get_if<array_record>(&rec);
        if (arrays == nullptr) continue;
        auto c = clip_update(*arrays, current_, *server_clip_);
        if (!c) return fail(c.error().code, "cannot clip ArrayRecord '" + name + "': " + c.error().what);
        unclipped = unclipped && !c->clipped;
        *arrays = std::move(c->arrays);
      }
      if (auto ok = inner_->accept(copy); !ok) return ok;
    } else {
      if (read_norm_bits_) {
        auto bit = reply_metric(reply, key_norm_bit);
        if (!bit)
          return fail(errc::invalid_message,
                      std::string{"no '"} + key_norm_bit +
                          "' in the reply's metrics (is adaptiveclipping_mod on the ClientApp?)");
        unclipped = *bit != 0;
      }
      if (auto ok = inner_->accept(reply); !ok) return ok;
    }
    ++accepted_;
    if (unclipped) ++unclipped_;
    return {};
  }

  train_aggregate finish() override {
    auto agg = inner_->finish();
    finish_(agg, unclipped_, accepted_);
    return agg;
  }

 private:
  std::unique_ptr<train_aggregator> inner_;
  array_record current_;
  std::optional<double> server_clip_;
  bool read_norm_bits_;
  finish_fn finish_;
  size_t accepted_ = 0, unclipped_ = 0;
};

std::mt19937_64 seeded(const std::optional<uint64_t>& seed) {
  return std::mt19937_64(seed ? *seed : std::random_device{}());
}

std::string side_name(clipping_side s) { return s == clipping_side::server ? "Server" : "Client"; }

// The wrapped summary under the wrapper's name, with the DP settings first.
std::vector<std::string> dp_summary(std::vector<std::string> inner, const std::string& name,
                                    std::vector<std::string> settings) {
  if (!inner.empty()) inner[0] = "Starting " + name + " strategy:";
  return insert_settings(std::move(inner), "DP settings", settings);
}

}  // namespace

// --- what the wrappers share --------------------------------------------------

dp_wrapper::dp_wrapper(std::unique_ptr<strategy> inner, clipping_side side, std::string kind,
                       size_t num_sampled_clients, std::optional<uint64_t> seed)
    : strategy_wrapper(std::move(inner)),
      side_(side),
      rng_(seeded(seed)),
      kind_(std::move(kind)),
      num_sampled_clients_(num_sampled_clients) {}

std::string dp_wrapper::name() const {
  return "DifferentialPrivacy" + side_name(side_) + "Side" + kind_;
}

std::string dp_wrapper::wrapped_line() const { return "Wrapped strategy: " + inner().name(); }

std::vector<message> dp_wrapper::configure_train(int round, const array_record& arrays,
                                                 config_record config, grid& g) {
  if (side_ == clipping_side::client) config.insert_or_assign(key_clipping_norm, clipping_norm());
  auto msgs = strategy_wrapper::configure_train(round, arrays, std::move(config), g);
  sampled_ = msgs.size();
  return msgs;
}

std::unique_ptr<train_aggregator> dp_wrapper::make_train_aggregator(int round,
                                                                    const array_record& current) {
  std::optional<double> clip;
  if (side_ == clipping_side::server) clip = clipping_norm();
  return std::make_unique<dp_aggregator>(
      strategy_wrapper::make_train_aggregator(round, current), current, clip,
      side_ == clipping_side::client && kind_ == "AdaptiveClipping",
      [this](train_aggregate& agg, size_t unclipped, size_t accepted) {
        finish_round(agg, unclipped, accepted);
      });
}

std::optional<std::string> dp_wrapper::reject_train_round(const phase_report& r) const {
  if (auto why = strategy_wrapper::reject_train_round(r)) return why;
  if (r.failures == 0) return std::nullopt;
  return std::to_string(r.failures) +
         " failure(s) in the round: the DP noise is calibrated to complete rounds";
}

double dp_wrapper::noise_m() const {
  return std::max(1.0, static_cast<double>(num_sampled_clients_ ? num_sampled_clients_ : sampled_));
}

void dp_wrapper::add_noise(train_aggregate& agg, double stddev) {
  if (!agg.arrays) return;
  last_stddev_ = stddev;
  add_gaussian_noise(*agg.arrays, stddev, rng_);
}

// --- fixed clipping ----------------------------------------------------------

dp_fixed_clipping::dp_fixed_clipping(std::unique_ptr<strategy> inner, clipping_side side,
                                     dp_fixed_clipping_options opts)
    : dp_wrapper(std::move(inner), side, "FixedClipping", opts.num_sampled_clients, opts.seed),
      o_(opts) {
  if (!(o_.noise_multiplier >= 0))
    throw std::invalid_argument("The noise multiplier should be a non-negative value.");
  if (!(o_.clipping_norm > 0))
    throw std::invalid_argument("The clipping norm should be a positive value.");
}

std::vector<std::string> dp_fixed_clipping::summary(int num_rounds, const array_record& arrays,
                                                    const config_record& train_config,
                                                    const config_record& evaluate_config) const {
  return dp_summary(
      strategy_wrapper::summary(num_rounds, arrays, train_config, evaluate_config), name(),
      {wrapped_line(), "Noise multiplier: " + format_double("%g", o_.noise_multiplier),
       "Clipping norm: " + format_double("%g", o_.clipping_norm),
       "Sampled clients (noise): " +
           (o_.num_sampled_clients ? std::to_string(o_.num_sampled_clients) : "as sampled")});
}

void dp_fixed_clipping::finish_round(train_aggregate& agg, size_t, size_t) {
  add_noise(agg, central_noise_stddev(o_.noise_multiplier, o_.clipping_norm, noise_m()));
}

// --- adaptive clipping -------------------------------------------------------

dp_adaptive_clipping::dp_adaptive_clipping(std::unique_ptr<strategy> inner, clipping_side side,
                                           dp_adaptive_clipping_options opts)
    : dp_wrapper(std::move(inner), side, "AdaptiveClipping", opts.num_sampled_clients, opts.seed),
      o_(opts),
      clipping_norm_(opts.initial_clipping_norm) {
  if (!(o_.noise_multiplier >= 0))
    throw std::invalid_argument("The noise multiplier should be a non-negative value.");
  if (!(o_.initial_clipping_norm > 0))
    throw std::invalid_argument("The initial clipping norm should be a positive value.");
  if (!(o_.target_clipped_quantile >= 0 && o_.target_clipped_quantile <= 1))
    throw std::invalid_argument("The target clipped quantile must be in [0, 1].");
  if (!(o_.clip_norm_lr > 0)) throw std::invalid_argument("The learning rate must be positive.");
  if (o_.clipped_count_stddev && !(*o_.clipped_count_stddev >= 0))
    throw std::invalid_argument("The `clipped_count_stddev` must be non-negative.");
  if (o_.num_sampled_clients > 0) {
    auto ok = adaptive_noise_params(o_.noise_multiplier,
                                    static_cast<double>(o_.num_sampled_clients),
                                    o_.clipped_count_stddev);
    if (!ok) throw std::invalid_argument(ok.error().what);
  }
}

std::vector<std::string> dp_adaptive_clipping::summary(int num_rounds, const array_record& arrays,
                                                       const config_record& train_config,
                                                       const config_record& evaluate_config) const {
  return dp_summary(
      strategy_wrapper::summary(num_rounds, arrays, train_config, evaluate_config), name(),
      {wrapped_line(), "Noise multiplier: " + format_double("%g", o_.noise_multiplier),
       "Clipping norm: " + format_double("%g", clipping_norm_),
       "Target clipped quantile: " + format_double("%g", o_.target_clipped_quantile),
       "Clip norm learning rate: " + format_double("%g", o_.clip_norm_lr)});
}

void dp_adaptive_clipping::finish_round(train_aggregate& agg, size_t unclipped, size_t accepted) {
  double m = noise_m();
  auto noise = adaptive_noise_params(o_.noise_multiplier, m, o_.clipped_count_stddev);
  if (!noise) throw run_error(name() + ": " + noise.error().what);
  // The noise follows the norm this round's updates were clipped to.
  add_noise(agg, central_noise_stddev(noise->update_noise_multiplier, clipping_norm_, m));
  if (accepted == 0) return;
  double count = static_cast<double>(unclipped);
  if (noise->clipped_count_stddev > 0)
    count += std::normal_distribution<double>(0.0, noise->clipped_count_stddev)(rng_);
  clipping_norm_ = next_clipping_norm(clipping_norm_, o_.clip_norm_lr,
                                      count / static_cast<double>(accepted),
                                      o_.target_clipped_quantile);
}

// The noise RNG and what the log reports, besides the wrapped strategy's.
void dp_wrapper::save_state(record_dict& out) const {
  strategy_wrapper::save_state(out);
  out.insert_or_assign("dp", config_record{{"rng", rng_state(rng_)},
                                           {"sampled", static_cast<int64_t>(sampled_)},
                                           {"last_stddev", last_stddev_}});
}

expected<void> dp_wrapper::restore_state(const record_dict& in) {
  if (auto ok = strategy_wrapper::restore_state(in); !ok) return ok;
  if (auto ok = restore_rng(in, "dp", "rng", rng_); !ok) return ok;
  auto sampled = state_value<int64_t>(in, "dp", "sampled");
  if (!sampled) return sampled.error();
  auto stddev = state_value<double>(in, "dp", "last_stddev");
  if (!stddev) return stddev.error();
  sampled_ = static_cast<size_t>(*sampled);
  last_stddev_ = *stddev;
  return {};
}

// The clipping norm, which adapts every round.
void dp_adaptive_clipping::save_state(record_dict& out) const {
  dp_wrapper::save_state(out);
  out.insert_or_assign("dp_adaptive", config_record{{"clipping_norm", clipping_norm_}});
}

expected<void> dp_adaptive_clipping::restore_state(const record_dict& in) {
  if (auto ok = dp_wrapper::restore_state(in); !ok) return ok;
  auto norm = state_value<double>(in, "dp_adaptive", "clipping_norm");
  if (!norm) return norm.error();
  clipping_norm_ = *norm;
  return {};
}

}  // namespace stamen
