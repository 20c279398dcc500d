#pragma once

// Every type that crosses an actor boundary, in one CAF type-ID block, and
// the atoms of the protocol. Register with register_types() on every node.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/type_id.hpp>

#include "actors/envelope.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(stamen, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(stamen, (stamen::envelope))
  CAF_ADD_TYPE_ID(stamen, (std::vector<stamen::envelope>))
  CAF_ADD_TYPE_ID(stamen, (std::vector<std::string>))
  CAF_ADD_TYPE_ID(stamen, (std::vector<uint64_t>))
CAF_END_TYPE_ID_BLOCK(stamen)

namespace stamen {

// Atoms are at most 10 characters in CAF 0.17.
using instruct_atom = caf::atom_constant<caf::atom("instruct")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using register_atom = caf::atom_constant<caf::atom("register")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using leave_atom = caf::atom_constant<caf::atom("leave")>;
using nodes_atom = caf::atom_constant<caf::atom("nodes")>;
using wait_atom = caf::atom_constant<caf::atom("wait")>;
using push_atom = caf::atom_constant<caf::atom("push")>;
using stream_atom = caf::atom_constant<caf::atom("stream")>;
using reply_atom = caf::atom_constant<caf::atom("reply")>;
using duplicate_atom = caf::atom_constant<caf::atom("duplicate")>;
using pull_atom = caf::atom_constant<caf::atom("pull")>;
using await_atom = caf::atom_constant<caf::atom("await")>;
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;
using crash_atom = caf::atom_constant<caf::atom("crash")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using restart_atom = caf::atom_constant<caf::atom("restart")>;
// The cluster's brokers (superlink.hpp, node_link.hpp).
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
using reconnect_atom = caf::atom_constant<caf::atom("reconnect")>;
using log_atom = caf::atom_constant<caf::atom("log")>;
using finished_atom = caf::atom_constant<caf::atom("finished")>;
using listen_atom = caf::atom_constant<caf::atom("listen")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using round_atom = caf::atom_constant<caf::atom("round")>;
using tally_atom = caf::atom_constant<caf::atom("tally")>;
using http_atom = caf::atom_constant<caf::atom("http")>;
using progress_atom = caf::atom_constant<caf::atom("progress")>;
using stored_atom = caf::atom_constant<caf::atom("stored")>;
using artifacts_atom = caf::atom_constant<caf::atom("artifacts")>;
using refetch_atom = caf::atom_constant<caf::atom("refetch")>;

/// Adds the types above to a CAF config (needed on every node of a cluster).
inline void register_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::stamen>();
}

}  // namespace stamen
