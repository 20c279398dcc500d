#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/typed_response_promise.hpp>

#include "actors/interfaces.hpp"
#include "messages/codec.hpp"
#include "runtime/logger.hpp"

namespace stamen {

struct grid_state {
  static inline const char* name = "stamen.grid";

  /// An instruction that a node owes a reply to.
  struct pending {
    uint64_t node_id;
    double deadline;
    buffer instruction;        ///< kept to build an error reply if the node dies
    buffer content;            ///< its content part, shared with the round's other instructions
    std::vector<buffer> content_parts;  ///< or that part unjoined (envelope::content_parts)
    reply_stream_actor stream;  ///< where the reply goes; invalid: keep it for pull
    bool streamed = false;
    /// Streamed and answered: kept (without its bytes) until its batch is
    /// cancelled, so that a second reply reaches the stream, which counts it.
    bool answered = false;
  };

  struct waiter {
    uint64_t n;
    std::chrono::steady_clock::time_point deadline;
    caf::typed_response_promise<uint64_t> promise;
  };

  std::unordered_map<uint64_t, supernode_actor> nodes;
  /// The node ids behind each actor (one, or a cluster link's many).
  std::unordered_map<caf::actor_addr, std::vector<uint64_t>> node_by_addr;
  std::unordered_map<std::string, pending> owed;
  std::unordered_map<std::string, envelope> inbox;  ///< replies waiting for pull
  std::vector<waiter> waiters;
  codec_options codec;
  logger log;
  uint64_t synthesized = 0;
};

/// The grid actor (Flower's SuperLink role): registers and monitors nodes,
/// routes encoded instructions and replies without decoding them, and answers
/// for a node that dies with a node-unavailable error reply for every
/// instruction it still owed. Faults, when a plan is set, are injected by a
/// fault stage in front of each node (fault_stage.hpp): the grid never knows.
grid_actor::behavior_type grid_behavior(grid_actor::stateful_pointer<grid_state> self,
                                        codec_options codec, logger log);

}  // namespace stamen
