#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <optional>
#include <unordered_map>

#include "actors/interfaces.hpp"
#include "messages/codec.hpp"
#include "runtime/fault/fault_plan.hpp"

namespace stamen {

struct fault_stage_state {
  static inline const char* name = "stamen.fault_stage";

  /// What the plan does to the reply of one instruction that was delivered.
  struct reply_faults {
    int64_t round = 0;
    bool drop = false;
    bool duplicate = false;
    bool corrupt = false;
    bool crash_after = false;
    std::optional<double> restart_after_ms;  ///< with crash_after: rejoin this long after
    double hold_ms = 0;
    /// A poison rule's parameters and what it needs: the instruction's
    /// content (the global arrays, shared, not copied) and a seed.
    std::optional<poison_spec> poison;
    record_dict instruction;
    uint64_t poison_seed = 0;
  };

  uint64_t node_id = 0;
  supernode_actor node;       ///< the node behind this stage
  grid_actor upstream;
  std::shared_ptr<fault_injector> faults;
  codec_options codec;
  respawner_actor respawner;  ///< brings restarted nodes back; invalid: none
  /// By instruction id; only instructions with reply-side faults are here.
  std::unordered_map<std::string, reply_faults> replies;
  int register_attempts = 0;  ///< while the grid refuses the node's id
};

/// A fault stage between `upstream` (the grid) and one node. The node
/// joins the stage as it would join the grid; the stage registers
/// itself upstream under the node's id and links to the node, so that the
/// node's death is the stage's and the grid answers for what the node owed.
/// Each instruction is matched against the plan (by round, phase and node,
/// from the seed alone) and then held, dropped or delivered, the node killed
/// before, during or after its work; each reply is held, dropped, corrupted
/// or duplicated. Every fault injected is recorded in `faults`. A restarted
/// node is brought back by `respawner` after the rule's delay; since the grid
/// may not yet have seen its previous incarnation go, a refused registration
/// is tried again for a while before the stage, and with it the node, stops.
fault_stage_actor::behavior_type fault_stage(fault_stage_actor::stateful_pointer<fault_stage_state> self,
                                             grid_actor upstream,
                                             std::shared_ptr<fault_injector> faults,
                                             codec_options codec, respawner_actor respawner);

}  // namespace stamen
