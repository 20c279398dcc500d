#pragma once

// The system's protocol, top to bottom: who sends what to whom.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/type_ids.hpp"
#include "messages/record_dict.hpp"

// A Context's state travels only between a node and its own job, in one
// process (the done message): never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(stamen::record_dict)

namespace stamen {

/// A SuperNode: owns a ClientApp and its Context, answers instructions.
using supernode_actor = caf::typed_actor<
    /// An instruction from the grid; the reply goes back as (reply, envelope).
    caf::reacts_to<instruct_atom, envelope>,
    /// Internal: the ClientApp finished an instruction on the compute pool;
    /// the Context's state comes back with the reply.
    caf::reacts_to<done_atom, envelope, record_dict>>;

/// What a SuperNode talks to: the grid itself in one process (or a fault
/// stage in front of it), or its node link (which carries both over the
/// network) in a cluster.
using node_uplink_actor = caf::typed_actor<
    /// A SuperNode joins under `node_id` and says (leave) when it ends, so
    /// no one monitors it; if the id is taken, the node is stopped.
    caf::reacts_to<join_atom, uint64_t, supernode_actor>,
    /// The node that joined as `node_id` (actor id) is gone.
    caf::reacts_to<leave_atom, uint64_t, caf::actor_id>,
    caf::reacts_to<reply_atom, envelope>>;

/// Receives the replies of one batch of instructions as they arrive (the
/// strategy's aggregation runs here, one reply at a time).
using reply_stream_actor = caf::typed_actor<
    /// The first reply to one of the batch's instructions.
    caf::reacts_to<reply_atom, envelope>,
    /// A second reply to an instruction (the grid knows): handed on to be
    /// counted as a failure, but it answers nothing.
    caf::reacts_to<duplicate_atom, envelope>,
    /// Answers, once every instruction got a reply or the deadline passed,
    /// with how many got one and, only if some got none, which ones did.
    caf::replies_to<await_atom>::with<uint64_t, std::vector<std::string>>,
    /// `n` of the batch's instructions were never sent (they could not be
    /// encoded): not waited for.
    caf::reacts_to<cancel_atom, uint64_t>,
    caf::reacts_to<deadline_atom>>;

/// The grid (Flower's SuperLink role): node registry and message routing.
using grid_actor = caf::typed_actor<
    /// A node joins under `node_id`; false if the id is taken by a live node.
    /// The grid monitors it (a fault stage, which stands for its node and
    /// asks again while a restarted node's previous incarnation is there).
    caf::replies_to<register_atom, uint64_t, supernode_actor>::with<bool>,
    /// A SuperNode joins, and leaves when it ends (see node_uplink_actor).
    caf::reacts_to<join_atom, uint64_t, supernode_actor>,
    caf::reacts_to<leave_atom, uint64_t, caf::actor_id>,
    /// A node's last reply, then it leaves (a fault stage whose node
    /// crashes right after replying): one message, so that nothing the
    /// reply sets off (the next round's sampling) reaches the grid while
    /// the node still counts as there.
    caf::reacts_to<leave_atom, uint64_t, caf::actor_id, envelope>,
    /// Nodes join under `node_ids`, all behind one actor (a cluster link
    /// that carries many): all or none; when the actor dies, they all do.
    caf::replies_to<register_atom, std::vector<uint64_t>, supernode_actor>::with<bool>,
    caf::replies_to<nodes_atom>::with<std::vector<uint64_t>>,
    /// Answers with the node count once it reaches `n`, or when the timeout passes.
    caf::replies_to<wait_atom, uint64_t, caf::timespan>::with<uint64_t>,
    /// Instructions whose replies are kept for pull.
    caf::replies_to<push_atom, std::vector<envelope>>::with<std::vector<std::string>>,
    /// Instructions whose replies are forwarded to a stream actor.
    caf::reacts_to<stream_atom, std::vector<envelope>, reply_stream_actor>,
    /// A reply from a node.
    caf::reacts_to<reply_atom, envelope>,
    caf::replies_to<pull_atom, std::vector<std::string>>::with<std::vector<envelope>>,
    /// Forget instructions whose replies are no longer wanted (a round that
    /// closed without them): their late replies are then dropped.
    caf::reacts_to<cancel_atom, std::vector<std::string>>>;

/// A fault stage (fault_stage.hpp): one per node when a fault plan is set. It
/// is the node to the grid and the grid to the node, and misbehaves between
/// them as the plan says; neither side knows it is there.
using fault_stage_actor = caf::typed_actor<
    caf::reacts_to<instruct_atom, envelope>,
    caf::reacts_to<done_atom, envelope, record_dict>,
    caf::reacts_to<join_atom, uint64_t, supernode_actor>,
    caf::reacts_to<leave_atom, uint64_t, caf::actor_id>,
    caf::reacts_to<reply_atom, envelope>,
    /// Internal: a delayed crash of the node (a crash "during" its work).
    caf::reacts_to<crash_atom>,
    /// Internal: registers again (the grid may still hold a restarted node's
    /// previous incarnation).
    caf::reacts_to<reconnect_atom>>;

/// Brings a node that a fault plan restarted back, with a fresh Context.
using respawner_actor = caf::typed_actor<caf::reacts_to<restart_atom, uint64_t>>;

}  // namespace stamen
