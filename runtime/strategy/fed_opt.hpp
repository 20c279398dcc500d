#pragma once

#include <vector>

#include "runtime/strategy/fed_avg.hpp"

namespace stamen {

/// FedOpt's parameters (Reddi et al., 2021, "Adaptive Federated
/// Optimization"), with Flower's names. Defaults are FedOpt's; each of
/// fed_adagrad, fed_adam and fed_yogi starts from Flower's own defaults.
struct fed_opt_options : fed_avg_options {
  double eta = 1e-1;    ///< server learning rate
  double eta_l = 1e-1;  ///< client learning rate (reported; clients use their own)
  double beta_1 = 0.0;  ///< first-moment decay
  double beta_2 = 0.0;  ///< second-moment decay
  double tau = 1e-3;    ///< adaptivity: how small a second moment may get
};

/// The server optimizers of Reddi et al.: replies are folded as FedAvg folds
/// them (O(model) memory); on an accepted round, with Δ = aggregate - current,
///   m = beta_1 * m + (1 - beta_1) * Δ          (m starts at 0),
///   v = second_moment(v, Δ)                    (v starts at 0),
///   new = current + step_size(t) * m / (sqrt(v) + tau),
/// t counting accepted rounds from 1. Floating-point arrays are stepped in
/// double; other dtypes take the FedAvg aggregate.
class fed_opt : public fed_avg {
 public:
  /// Throws std::invalid_argument unless eta, eta_l and tau are > 0 and
  /// beta_1, beta_2 lie in [0, 1).
  explicit fed_opt(fed_opt_options opts);

  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;
  array_record update_global(int round, const array_record& current,
                             array_record aggregated) override;

  /// The optimizer's parameters, as the subclass mapped them (e.g. FedAdagrad's betas are 0).
  const fed_opt_options& opt_options() const { return o_; }

 protected:
  /// v's update for one coordinate.
  virtual double second_moment(double v, double delta) const = 0;
  /// The learning rate of step t (1, 2, ...).
  virtual double step_size(int t) const { return o_.eta; }

  void save_state(record_dict& out) const override;
  expected<void> restore_state(const record_dict& in) override;

 private:
  fed_opt_options o_;
  int steps_ = 0;
  std::vector<std::vector<double>> m_, v_;  ///< per array, in record order
};

/// FedAdagrad's parameters, with Flower's names and defaults.
struct fed_adagrad_options : fed_avg_options {
  /// @var eta
  /// Flower's `eta`: the server learning rate (default 0.1).

  /// @var eta_l
  /// Flower's `eta_l`: the client learning rate, reported only (default 0.1).

  /// @var tau
  /// Flower's `tau`: adaptivity, how small a second moment may get (default 1e-3).

  double eta = 1e-1, eta_l = 1e-1, tau = 1e-3;
};

/// FedAdagrad: v = v + Δ² (beta_1 = 0: m = Δ).
class fed_adagrad : public fed_opt {
 public:
  /// Throws std::invalid_argument on parameters FedOpt refuses.
  explicit fed_adagrad(fed_adagrad_options opts = {});
  std::string name() const override { return "FedAdagrad"; }

 protected:
  double second_moment(double v, double d) const override { return v + d * d; }
};

/// FedAdam's parameters, with Flower's names and defaults.
struct fed_adam_options : fed_avg_options {
  /// @var eta
  /// Flower's `eta`: the server learning rate (default 0.1).

  /// @var eta_l
  /// Flower's `eta_l`: the client learning rate, reported only (default 0.1).

  /// @var beta_1
  /// Flower's `beta_1`: first-moment (momentum) decay, in [0, 1) (default 0.9).

  /// @var beta_2
  /// Flower's `beta_2`: second-moment decay, in [0, 1) (default 0.99).

  /// @var tau
  /// Flower's `tau`: adaptivity, how small a second moment may get (default 1e-3).

  double eta = 1e-1, eta_l = 1e-1, beta_1 = 0.9, beta_2 = 0.99, tau = 1e-3;
};

/// FedAdam: v = beta_2 * v + (1 - beta_2) * Δ², with Adam's bias correction
/// (Kingma & Ba, 2014): step t uses eta * sqrt(1 - beta_2^t) / (1 - beta_1^t).
class fed_adam : public fed_opt {
 public:
  /// Throws std::invalid_argument on parameters FedOpt refuses.
  explicit fed_adam(fed_adam_options opts = {});
  std::string name() const override { return "FedAdam"; }

 protected:
  double second_moment(double v, double d) const override;
  double step_size(int t) const override;
};

/// FedYogi's parameters, with Flower's names and defaults.
struct fed_yogi_options : fed_avg_options {
  /// @var eta
  /// Flower's `eta`: the server learning rate (default 0.01).

  /// @var eta_l
  /// Flower's `eta_l`: the client learning rate, reported only (default 0.0316).

  /// @var beta_1
  /// Flower's `beta_1`: first-moment (momentum) decay, in [0, 1) (default 0.9).

  /// @var beta_2
  /// Flower's `beta_2`: second-moment decay, in [0, 1) (default 0.99).

  /// @var tau
  /// Flower's `tau`: adaptivity, how small a second moment may get (default 1e-3).

  double eta = 1e-2, eta_l = 0.0316, beta_1 = 0.9, beta_2 = 0.99, tau = 1e-3;
};

/// FedYogi: v = v - (1 - beta_2) * Δ² * sign(v - Δ²) (Zaheer et al., 2018).
class fed_yogi : public fed_opt {
 public:
  /// Throws std::invalid_argument on parameters FedOpt refuses.
  explicit fed_yogi(fed_yogi_options opts = {});
  std::string name() const override { return "FedYogi"; }

 protected:
  double second_moment(double v, double d) const override;
};

}  // namespace stamen
