#pragma once

#include <cstdint>
#include <deque>
#include <memory>

#include "actors/compute_pool.hpp"
#include "actors/interfaces.hpp"
#include "messages/codec.hpp"
#include "messages/context.hpp"
#include "runtime/client_app.hpp"

namespace stamen {

/// What the SuperNodes of one federation (or of one run on a cluster node)
/// have in common, held once: a million nodes would otherwise hold a million
/// copies of the run config.
struct node_common {
  compute_pool* pool = nullptr;  ///< where ClientApps run; must outlive the nodes
  codec_options codec;
  /// Replies go out on a socket (a supernode process), never to an actor
  /// that reads their bytes: they are encoded in parts (envelope::bytes_parts).
  bool wire_replies = false;
  /// The run-wide part of each node's Context (run_id, run_config, app_dir,
  /// run_dir); node_id, node_config and state are the node's own.
  context run;
};

/// The node_common for a node with Context `ctx`: `previous` when it already
/// holds the same run-wide part (all nodes of a run), else a new one.
std::shared_ptr<const node_common> share_common(const context& ctx, compute_pool* pool,
                                                const codec_options& codec,
                                                std::shared_ptr<const node_common> previous,
                                                bool wire_replies = false);

/// What a SuperNode actor is built from.
struct supernode_config {
  uint64_t node_id = 0;
  std::shared_ptr<const client_app> app;
  config_record node_config;
  record_dict state;  ///< usually empty: a node starts remembering nothing
  std::shared_ptr<const node_common> common;
};

struct supernode_state {
  static inline const char* name = "stamen.supernode";
  // Kept to 120 bytes: with CAF's 1,032, the actor then fits an allocator
  // size class of 1,152 (a federation holds up to a million of these).
  uint64_t node_id = 0;
  caf::actor_id self = 0;  ///< this actor's id, for the leave message
  std::shared_ptr<const client_app> app;
  std::shared_ptr<const node_common> common;
  node_uplink_actor grid;  ///< the grid, a fault stage, or a cluster node's link
  config_record node_config;
  /// Context.state; moved into the job in flight and back with its reply.
  record_dict state;
  /// Instructions waiting for the one in flight; allocated only while some
  /// wait (an empty deque costs ~600 bytes, most of an idle node).
  std::unique_ptr<std::deque<envelope>> waiting;
  uint64_t replies : 63;
  uint64_t busy : 1;

  supernode_state() : replies(0), busy(0) {}
  /// Tells the uplink the node is gone, however it ends (quit, kill, system
  /// shutdown): cheaper than being monitored, which costs every node an
  /// attachable and the grid an index by actor.
  ~supernode_state();
};

/// A SuperNode actor: joins `grid` (the grid actor, a fault stage or a node
/// link) under cfg.node_id, then answers instructions one at a time by
/// running its ClientApp on the compute pool, with a Context built from the
/// run-wide part in cfg.common and its own node_config and state. A node
/// whose id is taken is stopped by the grid.
supernode_actor::behavior_type supernode_behavior(supernode_actor::stateful_pointer<supernode_state> self,
                                         supernode_config cfg, node_uplink_actor grid);

/// The error reply for an instruction that waited past its deadline.
envelope expired_reply(const envelope& in, uint64_t node_id, uint64_t seq,
                       const codec_options& codec);

/// Runs one encoded instruction through `app` and returns the encoded reply,
/// in parts when `wire` (see node_common::wire_replies). Never throws:
/// undecodable input or an unencodable reply yields an error reply.
envelope answer_instruction(const client_app& app, context& ctx, const envelope& in,
                            uint64_t node_id, uint64_t seq, const codec_options& codec,
                            bool wire = false);

}  // namespace stamen
