#pragma once

#include <cstdint>
#include <optional>
#include <random>

#include "runtime/strategy/strategy_wrapper.hpp"

namespace stamen {

/// Where updates are clipped: by the wrapper on the server, or by the
/// clients' mods (fixedclipping_mod, adaptiveclipping_mod) before they reply.
enum class clipping_side : uint8_t {
  server,  ///< Flower's DifferentialPrivacyServerSide*Clipping: the server clips each update
  client   ///< Flower's DifferentialPrivacyClientSide*Clipping: the nodes' mods clip, the server only adds noise
};

/// The parameters of the fixed-clipping wrappers, with Flower's names.
struct dp_fixed_clipping_options {
  double noise_multiplier = 0;  ///< z; >= 0
  double clipping_norm = 0;     ///< C; > 0
  /// m, which sizes the noise (z * C / m); 0: the number of nodes sampled in
  /// the round (Flower requires it to be given).
  size_t num_sampled_clients = 0;
  /// Seed of the noise; unset draws one from std::random_device.
  std::optional<uint64_t> seed;
};

/// The parameters of the adaptive-clipping wrappers, with Flower's names and defaults.
struct dp_adaptive_clipping_options {
  double noise_multiplier = 0;  ///< z; >= 0, and below 2 σ_b when > 0
  size_t num_sampled_clients = 0;  ///< 0: as sampled (see above)
  double initial_clipping_norm = 0.1;  ///< C of the first round; > 0
  /// γ, the fraction of updates that should end a round unclipped.
  double target_clipped_quantile = 0.5;
  double clip_norm_lr = 0.2;  ///< the geometric step of C's update; > 0
  /// σ_b, noise on the count of unclipped updates; unset: m / 20.
  std::optional<double> clipped_count_stddev;
  /// Seed of the noise; unset draws one from std::random_device.
  std::optional<uint64_t> seed;
};

/// What the DP wrappers share: the side that clips, the norm sent to the
/// clients, the noise's generator and its m, and the rule that a round with
/// a failure is not aggregated (the noise is calibrated to m replies).
class dp_wrapper : public strategy_wrapper {
 public:
  std::string name() const override;
  std::vector<message> configure_train(int round, const array_record& arrays,
                                       config_record config, grid& g) override;
  std::unique_ptr<train_aggregator> make_train_aggregator(int round,
                                                          const array_record& current) override;
  std::optional<std::string> reject_train_round(const phase_report& report) const override;

  /// The norm this round's updates are clipped to.
  virtual double clipping_norm() const = 0;
  /// The stddev of the noise added in the last round that had an aggregate.
  double last_noise_stddev() const { return last_stddev_; }

  void save_state(record_dict& out) const override;
  expected<void> restore_state(const record_dict& in) override;

 protected:
  /// `kind`: "FixedClipping" or "AdaptiveClipping", for the name.
  dp_wrapper(std::unique_ptr<strategy> inner, clipping_side side, std::string kind,
             size_t num_sampled_clients, std::optional<uint64_t> seed);

  /// Ends a round: noise on the aggregate (if any), state updates; told how
  /// many accepted updates were left unclipped.
  virtual void finish_round(train_aggregate& agg, size_t unclipped, size_t accepted) = 0;
  /// m: num_sampled_clients, or the nodes sampled this round when it is 0.
  double noise_m() const;
  /// Adds N(0, stddev²) to the aggregate's floating-point values.
  void add_noise(train_aggregate& agg, double stddev);
  /// "Wrapped strategy: FedAvg", the first of the DP settings lines.
  std::string wrapped_line() const;

  clipping_side side_;   ///< who clips: the wrapper, or the clients' mods
  std::mt19937_64 rng_;  ///< the noise's generator, saved in checkpoints

 private:
  std::string kind_;
  size_t num_sampled_clients_;
  size_t sampled_ = 0;
  double last_stddev_ = 0;
};

/// Central differential privacy with fixed clipping (McMahan et al., 2018;
/// Flower's DifferentialPrivacy{Server,Client}SideFixedClipping) around any
/// strategy. Each update w_k - w is clipped to norm C (here on the server as
/// each reply arrives, or by fixedclipping_mod on the clients, which get C
/// in the train ConfigRecord as `clipping_norm`), the wrapped strategy
/// aggregates, and Gaussian noise of stddev z * C / m is added to every
/// floating-point value of the aggregate. Streaming is kept: a reply is
/// clipped and folded, then let go. As in Flower, a round with any failure
/// is not aggregated: the noise is calibrated to m replies.
class dp_fixed_clipping : public dp_wrapper {
 public:
  /// Wraps `inner`; throws std::invalid_argument when `inner` is null,
  /// noise_multiplier is negative or clipping_norm is not > 0.
  dp_fixed_clipping(std::unique_ptr<strategy> inner, clipping_side side,
                    dp_fixed_clipping_options opts);

  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;
  double clipping_norm() const override { return o_.clipping_norm; }

 protected:
  void finish_round(train_aggregate& agg, size_t unclipped, size_t accepted) override;

 private:
  dp_fixed_clipping_options o_;
};

/// Central DP with adaptive clipping (Andrew et al., 2021; Flower's
/// DifferentialPrivacy{Server,Client}SideAdaptiveClipping). As above, with
/// a clipping norm C that follows the γ quantile of the update norms: after
/// each round, with b̃ = (u + N(0, σ_b²)) / n, u of the n accepted updates
/// left unclipped, C ← C * exp(-clip_norm_lr * (b̃ - γ)). The noise on the aggregate
/// has stddev z_Δ * C / m, C being the norm this round's updates were
/// clipped to. Client side, adaptiveclipping_mod reports `norm_bit` = 1 when
/// a client's update was left unclipped, the paper's b_i.
class dp_adaptive_clipping : public dp_wrapper {
 public:
  /// Wraps `inner`; throws std::invalid_argument when `inner` is null or an
  /// option is out of range (including z >= 2 σ_b when m is given).
  dp_adaptive_clipping(std::unique_ptr<strategy> inner, clipping_side side,
                       dp_adaptive_clipping_options opts);

  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;
  /// The clipping norm the coming round uses.
  double clipping_norm() const override { return clipping_norm_; }

 protected:
  void finish_round(train_aggregate& agg, size_t unclipped, size_t accepted) override;

  void save_state(record_dict& out) const override;
  expected<void> restore_state(const record_dict& in) override;

 private:
  dp_adaptive_clipping_options o_;
  double clipping_norm_;
};

}  // namespace stamen
