#pragma once

#include <memory>
#include <random>

#include "runtime/secagg/secagg_params.hpp"
#include "runtime/strategy/train_workflow.hpp"

namespace stamen {

/// The server half of SecAgg+ (Flower's SecAggPlusWorkflow) as a train
/// workflow: set it on a weighted-mean strategy (strategy::set_train_workflow)
/// and each round's training runs the four stages (setup, share-keys,
/// collect-masked-vectors, unmask) with nodes that carry secaggplus_mod. The
/// server learns the weighted sum of the survivors' updates and nothing
/// about any one of them; the strategy's aggregator then sees each survivor's
/// reply (its metrics as the node sent them) carrying that secure mean, as
/// in Flower, so that its weighted mean, metrics and server-side steps run
/// unchanged.
///
/// Dropouts: a node that fails or times out at setup or share-keys is left
/// out (no one masked with it); one that drops after sharing its keys is
/// recovered: its pairwise masks are removed with its key rebuilt from its
/// neighbours' shares. A node left with fewer live neighbours than the
/// threshold is left out too, rather than failing the round as Flower does.
/// A secret with fewer shares than the threshold fails the round, with the
/// reason, and the strategy keeps its arrays.
class secagg_plus_workflow : public train_workflow {
 public:
  /// Throws std::invalid_argument naming a parameter out of its domain.
  explicit secagg_plus_workflow(secagg::secagg_plus_options opts);

  std::string name() const override { return "SecAgg+"; }

  std::optional<std::string> run(grid& g, int round, std::vector<message> instructions,
                                 const array_record& current, double timeout_s, reply_sink& sink,
                                 phase_report& report) override;

  /// The parameters, as validated.
  const secagg::secagg_plus_options& options() const { return opts_; }

 private:
  secagg::secagg_plus_options opts_;
  std::mt19937_64 rng_;
};

}  // namespace stamen
