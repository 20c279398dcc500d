#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "runtime/strategy/fed_avg.hpp"
#include "runtime/strategy/staleness.hpp"

namespace stamen {

/// The asynchronous loop's parameters (run-config keys in kebab-case).
struct async_options {
  /// How many nodes train at once.
  size_t concurrency = 5;
  /// The run ends after this many versions of the global model...
  int num_server_updates = 10;
  /// ...or after this many seconds, whichever comes first.
  double max_seconds = 3600;
  /// Federated evaluation every this many versions (0: never).
  int evaluate_every = 1;
  /// A reply staler than this is refused; unset: no limit.
  std::optional<int64_t> max_staleness;
  /// The weight s(τ) of an update by its staleness (run-config `staleness`); default: constant.
  staleness_fn staleness;
  /// Which node gets the next training when one replies: the same node
  /// (`same`), or one drawn from the idle nodes (`random`).
  enum class sampling_policy : uint8_t {
    same,    ///< the node that replied trains again, from the current version
             ///< (unless its reply was an error: then as `random`)
    random   ///< a node drawn uniformly from the idle ones, the one that replied included
  };
  sampling_policy sampling = sampling_policy::same;  ///< run-config `sampling`: `same` or `random`
};

/// Asynchronous federated learning without a round barrier: `concurrency`
/// nodes train at once; each reply is taken as it arrives (absorb) and its
/// node, or another, is given the current global model at once. The global
/// model advances in versions; a reply's staleness τ is the version now
/// minus the version it trained from (kept until its reply, so that the
/// update w_k - w_base is exact). A reply that is an error (a crashed node),
/// invalid, or staler than max_staleness is a failure with its reason, and
/// its slot is refilled. Replies are validated as FedAvg validates them.
/// Reported as versions (run_events::on_version, strategy_result::versions).
class async_strategy : public fed_avg {
 public:
  /// `opts` as for FedAvg (keys, weight, seed, the evaluate fraction);
  /// `async` the loop's own parameters.
  async_strategy(fed_avg_options opts, async_options async);

  /// Each update is applied as it arrives, without rounds (secure
  /// aggregation, which sums a round's updates, is refused).
  bool needs_individual_updates() const override { return true; }

  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;

  /// `num_rounds` is ignored (num_server_updates bounds the run);
  /// `timeout_s` bounds each training and each evaluation.
  strategy_result start(grid& g, array_record initial_arrays, int num_rounds = 3,
                        double timeout_s = 3600, config_record train_config = {},
                        config_record evaluate_config = {},
                        evaluate_fn server_evaluate = {}) override;

  /// The loop's parameters the strategy was built with.
  const async_options& async() const { return async_; }

 protected:
  /// Takes one valid update: w_k (`update`) trained from `base`, with
  /// staleness `tau` and weight `weight`. Returns true when `global` moved to
  /// a new version (and holds it).
  virtual bool absorb(array_record& global, const array_record& update, const array_record& base,
                      int64_t tau, double weight) = 0;

 private:
  /// Restores a checkpoint taken after a version, if `store` holds one;
  /// returns that version (0: none).
  int resume_async(const checkpoint_store& store, int total, strategy_result& result, std::mt19937_64& rng,
                   size_t& applied, size_t& failed, std::string& first);
  void checkpoint_async(checkpoint_store& store, int version, int total, const strategy_result& result,
                        const std::mt19937_64& rng, size_t applied, size_t failed, const std::string& first);

  async_options async_;
};

}  // namespace stamen
