#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "messages/array_record.hpp"
#include "messages/metric_record.hpp"

namespace stamen {

/// What secure aggregation (SecAgg+) did in one train round.
struct secure_aggregation_report {
  int num_shares = 0;  ///< neighbours per node, itself included
  int threshold = 0;   ///< shares that rebuild a secret
  /// The nodes whose masked updates are in the sum, in id order.
  std::vector<uint64_t> survivors;
  /// A node that left the protocol: at which stage, and why.
  struct drop {
    uint64_t node = 0;   ///< the node
    std::string stage;   ///< "setup", "share-keys", "collect-masked-vectors" or "unmask"
    std::string reason;  ///< the error it sent, or the timeout it missed
  };
  /// In the order they dropped. A survivor that fails at unmask is listed
  /// here too, yet stays among the survivors: its update is in the sum.
  std::vector<drop> dropped;
  /// Nodes dropped after sharing keys whose pairwise masks were removed from
  /// the sum with their key rebuilt from the neighbours' shares, in id order.
  std::vector<uint64_t> recovered;
  /// What one stage moved: payload bytes (arrays and config values, not
  /// framing) sent to the nodes and received from them.
  struct stage_bytes {
    std::string stage;      ///< the stage's name
    uint64_t sent = 0;      ///< to the nodes
    uint64_t received = 0;  ///< from the nodes
  };
  /// One entry per stage run, in order.
  std::vector<stage_bytes> bytes;
};

/// One phase (train or evaluate) of one round, as it happened.
struct phase_report {
  int round = 0;         ///< the round, from 1 (a version in an asynchronous run's evaluations)
  size_t sampled = 0;    ///< instructions sent: the nodes sampled
  size_t results = 0;    ///< valid replies, folded into the aggregate
  /// Error replies, timeouts, and replies refused (duplicate, unexpected, invalid).
  size_t failures = 0;
  /// One sentence per failure, naming the node ("node 3: no reply within ...").
  std::vector<std::string> failure_reasons;
  double seconds = 0;    ///< wall-clock time of the phase, send to last reply
  /// The run was stopped (SIGINT, say) before its last round: what is here
  /// is the result so far.
  bool stopped = false;
  /// Train rounds under secure aggregation: its survivors, drops and bytes.
  std::optional<secure_aggregation_report> secure_aggregation;
};

/// One version of the global model in an asynchronous run (FedBuff, FedAsync).
struct version_report {
  int version = 0;  ///< the version number, from 1 (version 0 is the initial arrays)
  /// The staleness τ of each update applied into this version, in the order
  /// applied: the global version then minus the one its node trained from.
  std::vector<int64_t> staleness;
  /// Replies refused since the previous version (errors, stale, invalid).
  size_t failures = 0;
  /// One sentence per refused reply, naming the node.
  std::vector<std::string> failure_reasons;
  /// The fewest trainings in flight when a reply of this version was taken
  /// (the slot it held included): `concurrency` unless nodes ran short.
  size_t in_flight_min = 0;
  /// Seconds since the run started.
  double seconds = 0;

  /// How many updates went into this version.
  size_t applied() const { return staleness.size(); }
  /// The mean staleness of those updates; 0 when there were none.
  double staleness_mean() const {
    double s = 0;
    for (auto t : staleness) s += static_cast<double>(t);
    return staleness.empty() ? 0.0 : s / static_cast<double>(staleness.size());
  }
  /// The largest staleness of those updates; 0 when there were none.
  int64_t staleness_max() const {
    int64_t m = 0;
    for (auto t : staleness) m = t > m ? t : m;
    return m;
  }
};

/// Flower's Result, plus what happened in each round.
struct strategy_result {
  array_record arrays;  ///< Flower's `Result.arrays`: the final global arrays
  /// Flower's `train_metrics_clientapp`: aggregated train metrics by round.
  std::map<int, metric_record> train_metrics_clientapp;
  /// Flower's `evaluate_metrics_clientapp`: aggregated evaluate metrics by round.
  std::map<int, metric_record> evaluate_metrics_clientapp;
  /// Flower's `evaluate_metrics_serverapp`: what the server-side `evaluate_fn`
  /// returned, by round.
  std::map<int, metric_record> evaluate_metrics_serverapp;
  std::vector<phase_report> train_rounds;     ///< one report per train phase, in order
  std::vector<phase_report> evaluate_rounds;  ///< one report per evaluate phase, in order
  /// Asynchronous runs: each version of the global model, in order (the
  /// evaluate rounds and metrics above are then keyed by version).
  std::vector<version_report> versions;
  /// Asynchronous runs: what came after the last version when the run ended
  /// (its time up or a stop): updates taken into a buffer that never filled
  /// (FedBuff's K not reached, so never applied to `arrays`) and failures.
  /// Its `version` is 0.
  version_report unapplied;
  double seconds = 0;  ///< wall-clock time of the whole run
  /// The run was stopped (SIGINT, say) before its last round: what is here
  /// is the result so far.
  bool stopped = false;
  /// Why the run failed (a round that could not sample enough nodes, say):
  /// what is here is then the result up to the failure. Empty otherwise.
  std::string error;
};

}  // namespace stamen
