#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "messages/expected.hpp"
#include "runtime/poison.hpp"

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
enum class fault_phase : uint8_t { train, evaluate, any };
enum class crash_point : uint8_t { before, during, after };
enum class drop_target : uint8_t { instruction, reply };

const char* to_string(fault_action x);
const char* to_string(fault_phase x);

/// One [[faults.rule]].
struct fault_rule {
  fault_action action = fault_action::drop;
  /// Which nodes, by index in the federation (partition-id in a simulation):
  /// the listed ones, all of them, or a seeded choice of round(fraction * N).
  std::vector<int64_t> nodes;
  bool all = false;
  double fraction = 0;
  std::vector<int64_t> rounds;  ///< empty: every round
  fault_phase phase = fault_phase::any;
  crash_point when = crash_point::before;
  drop_target target = drop_target::instruction;
  double delay_ms = 0;
  double probability = 1;  ///< drawn per (rule, round, node) from the seed
  poison_spec poison;      ///< for action = poison
};

/// A [faults] table: the same seed and rules give the same faults, run after run.
struct fault_plan {
  uint64_t seed = 0;
  std::vector<fault_rule> rules;
  bool empty() const { return rules.empty(); }
};

/// A fault that was injected.
struct fault_event {
  int64_t round = 0;
  uint64_t node_id = 0;
  int64_t node_index = -1;
  fault_action action = fault_action::drop;
  fault_phase phase = fault_phase::any;
};

/// Decides which rules hit an instruction, from the seed alone (never from
/// the order in which messages happen to be processed), and logs what was
/// injected. Thread-safe.
class fault_injector {
 public:
  /// `node_index` maps node ids to their index; `num_nodes` sizes fractions.
  fault_injector(fault_plan plan, std::unordered_map<uint64_t, int64_t> node_index,
                 size_t num_nodes);

  /// The rules that hit the instruction of `round`/`phase` to `node_id`.
  std::vector<const fault_rule*> match(int64_t round, fault_phase phase, uint64_t node_id) const;

  /// A seeded value in [0, 2^64) for corrupting bytes, per (round, node).
  uint64_t noise(int64_t round, uint64_t node_id) const;

  void record(fault_event e);
  std::vector<fault_event> events() const;

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
