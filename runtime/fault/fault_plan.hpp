#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "messages/expected.hpp"
#include "runtime/fault/poison.hpp"

namespace stamen {

/// What a fault does to the messages of the nodes it hits.
enum class fault_action : uint8_t {
  crash,      ///< kills the node (before, during or after it handles the instruction)
  drop,       ///< loses the instruction or the reply
  delay,      ///< holds the instruction for delay-ms
  duplicate,  ///< delivers the reply twice
  corrupt,    ///< flips bytes of the encoded reply, so decoding must fail
  slow,       ///< holds the reply for delay-ms, as if compute took longer
  partition,  ///< cuts the node off (instructions and replies) for the rule's rounds
  restart,    ///< crashes the node (before or after it handles the instruction); it rejoins
              ///< delay-ms later with a fresh Context, as a restarted process would
  poison,     ///< replaces the train reply's update with a valid but malicious one
};
/// The phase whose instructions a rule hits (a rule's `phase`; `any`: both).
enum class fault_phase : uint8_t {
  train,     ///< instructions of message type "train" (and "train.*")
  evaluate,  ///< instructions of message type "evaluate" (and "evaluate.*")
  any        ///< every instruction, "query" and custom types included; the default
};
/// When a crash or restart strikes relative to the handler (a rule's `when`).
enum class crash_point : uint8_t {
  before,  ///< on arrival: the instruction is never handled; the default
  during,  ///< delay-ms after arrival, while the handler may still be running (crash only)
  after    ///< once the handler is done: the reply is sent, then the node dies
};
/// What a drop loses (a rule's `target`).
enum class drop_target : uint8_t {
  instruction,  ///< the node never sees the instruction; the default
  reply         ///< the node does the work, but its reply never reaches the server
};

/// The action's name as a rule's `action` spells it ("crash", "drop", ...),
/// for config errors and the fault events a run reports.
const char* to_string(fault_action x);
/// The phase's name as a rule's `phase` spells it ("train", "evaluate",
/// "any"), for the fault events a run reports.
const char* to_string(fault_phase x);

/// One [[faults.rule]].
struct fault_rule {
  fault_action action = fault_action::drop;  ///< `action`, required in TOML
  /// Which nodes, by index in the federation (partition-id in a simulation):
  /// the listed ones, all of them, or a seeded choice of round(fraction * N).
  std::vector<int64_t> nodes;
  bool all = false;     ///< `nodes = "all"`: every node
  double fraction = 0;  ///< `fraction`, in [0, 1]: the share of nodes hit, chosen from the seed
  std::vector<int64_t> rounds;  ///< empty: every round
  fault_phase phase = fault_phase::any;  ///< `phase`: which instructions the rule hits
  /// `when`, for crash and restart (restart: not `during`).
  crash_point when = crash_point::before;
  drop_target target = drop_target::instruction;  ///< `target`, for drop
  /// `delay-ms`, milliseconds: the hold of delay and slow (> 0), a restart's downtime.
  double delay_ms = 0;
  double probability = 1;  ///< drawn per (rule, round, node) from the seed
  /// `stage`: only instructions of this SecAgg+ stage ("setup", "share-keys",
  /// "collect-masked-vectors", "unmask"); empty: every instruction.
  std::string stage;
  poison_spec poison;      ///< for action = poison
};

/// A [faults] table: the same seed and rules give the same faults, run after run.
struct fault_plan {
  uint64_t seed = 0;  ///< `seed`: every random choice of the plan derives from it
  std::vector<fault_rule> rules;  ///< the `[[faults.rule]]` entries, in file order
  /// Whether there are no rules (no fault stage needed).
  bool empty() const { return rules.empty(); }
};

/// A fault that was injected.
struct fault_event {
  int64_t round = 0;        ///< the instruction's round (its group id); 0 outside strategy rounds
  uint64_t node_id = 0;     ///< the node hit
  int64_t node_index = -1;  ///< its index in the federation; -1 if unknown
  fault_action action = fault_action::drop;  ///< what was done
  fault_phase phase = fault_phase::any;      ///< the instruction's phase
};

/// Decides which rules hit an instruction, from the seed alone (never from
/// the order in which messages happen to be processed), and logs what was
/// injected. Thread-safe.
class fault_injector {
 public:
  /// `node_index` maps node ids to their index; `num_nodes` sizes fractions.
  fault_injector(fault_plan plan, std::unordered_map<uint64_t, int64_t> node_index,
                 size_t num_nodes);

  /// The rules that hit the instruction of `round`/`phase` to `node_id`
  /// (`stage`: its SecAgg+ stage, if it is one).
  std::vector<const fault_rule*> match(int64_t round, fault_phase phase, uint64_t node_id,
                                       const std::string& stage = {}) const;

  /// A seeded value in [0, 2^64) for corrupting bytes, per (round, node).
  uint64_t noise(int64_t round, uint64_t node_id) const;

  /// Logs an injected fault; fills in `node_index` from `node_id` when it is -1.
  void record(fault_event e);
  /// The faults injected so far, sorted by round, phase, node index and
  /// action, so that the log does not depend on arrival order.
  std::vector<fault_event> events() const;

  /// The plan the injector was built with.
  const fault_plan& plan() const { return plan_; }

 private:
  bool selects(size_t rule, int64_t index) const;

  fault_plan plan_;
  std::unordered_map<uint64_t, int64_t> node_index_;
  std::vector<std::vector<bool>> chosen_;  ///< per rule with a fraction: chosen node indices
  mutable std::mutex mtx_;
  std::vector<fault_event> events_;
};

/// The phase of a message type ("train.custom" is train).
fault_phase phase_of(const std::string& message_type);

}  // namespace stamen
