#pragma once

#include <cstdint>
#include <list>
#include <memory>

#include "actors/compute_pool.hpp"
#include "actors/interfaces.hpp"
#include "messages/codec.hpp"
#include "messages/context.hpp"
#include "runtime/client_app.hpp"

namespace stamen {

/// What a SuperNode actor is built from.
struct supernode_config {
  uint64_t node_id = 0;
  std::shared_ptr<const client_app> app;
  context ctx;  ///< node_id, node_config and run_config; state starts empty
  compute_pool* pool = nullptr;  ///< where the ClientApp runs; must outlive the actor
  codec_options codec;
};

struct supernode_state {
  static inline const char* name = "stamen.supernode";
  // Kept lean: a federation holds up to a million of these.
  uint64_t node_id = 0;
  std::shared_ptr<const client_app> app;
  compute_pool* pool = nullptr;
  codec_options codec;
  std::shared_ptr<context> ctx;  ///< touched only by the job in flight
  node_uplink_actor grid;  ///< the grid, or a cluster node's link to it
  /// Instructions waiting for the one in flight. A list, not a deque: an
  /// empty deque allocates ~600 bytes, which is most of an idle node.
  std::list<envelope> queue;
  bool busy = false;
  uint64_t replies = 0;
};

/// A SuperNode actor: registers with `grid` (the grid actor or a node link) under cfg.node_id, then answers
/// instructions one at a time by running its ClientApp on the compute pool.
supernode_actor::behavior_type supernode_behavior(supernode_actor::stateful_pointer<supernode_state> self,
                                         supernode_config cfg, node_uplink_actor grid);

/// The error reply for an instruction that waited past its deadline.
envelope expired_reply(const envelope& in, uint64_t node_id, uint64_t seq,
                       const codec_options& codec);

/// Runs one encoded instruction through `app` and returns the encoded reply.
/// Never throws: undecodable input or an unencodable reply yields an error reply.
envelope answer_instruction(const client_app& app, context& ctx, const envelope& in,
                            uint64_t node_id, uint64_t seq, const codec_options& codec);

}  // namespace stamen
