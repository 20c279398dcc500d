#pragma once

#include <optional>
#include <string>
#include <vector>

#include "messages/array_record.hpp"
#include "messages/message.hpp"
#include "runtime/grid.hpp"
#include "runtime/strategy/strategy_result.hpp"

namespace stamen {

/// How a round's training reaches the nodes and comes back, when it is not
/// one instruction and one reply per node (Flower's ServerApp workflows,
/// SecAggPlusWorkflow first). A strategy with a workflow set hands it the
/// instructions its configure_train built; the workflow talks to the nodes
/// as it must and hands the strategy's sink exactly one message per sampled
/// node: a reply the strategy's aggregator folds, or an error reply saying
/// what went wrong (a node that dropped out, a stage that failed).
class train_workflow {
 public:
  virtual ~train_workflow() = default;

  /// The workflow's name for logs and errors ("SecAgg+").
  virtual std::string name() const = 0;

  /// Runs round `round`'s training of `instructions` against `current` (the
  /// global arrays the round starts from), each stage waiting at most
  /// `timeout_s`; fills what it reports in `report` (its own fields, not
  /// the counts, which the sink keeps). Returns why the round produced no
  /// aggregate (the arrays are then kept), or nothing.
  virtual std::optional<std::string> run(grid& g, int round, std::vector<message> instructions,
                                         const array_record& current, double timeout_s,
                                         reply_sink& sink, phase_report& report) = 0;
};

}  // namespace stamen
