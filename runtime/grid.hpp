#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "messages/expected.hpp"
#include "messages/message.hpp"

namespace stamen {

/// Receives replies one at a time as they arrive, so that a caller can fold
/// them and let each go (O(model) memory instead of O(clients x model)).
class reply_sink {
 public:
  virtual ~reply_sink() = default;
  /// Called once per reply, in arrival order, never concurrently. A reply the
  /// grid could not decode arrives as an error reply naming the problem.
  virtual void on_reply(const message& reply) = 0;
};

/// What happened to a batch of instructions sent with `send_and_stream`.
struct stream_report {
  size_t sent = 0;     ///< instructions the grid accepted and sent
  size_t replied = 0;  ///< replies handed to the sink, error replies included
  /// Instructions that got no reply before the deadline, as (message id, node id).
  std::vector<std::pair<std::string, uint64_t>> timed_out;
};

/// Instructions in flight with no round around them (asynchronous
/// strategies): instructions join at any time, replies come back one at a
/// time in arrival order. An instruction that gets no reply within its
/// timeout comes back as an error reply (reply_unavailable) naming it, so
/// that every instruction sent yields one message from next(). A second copy
/// of a reply (a node or network that duplicated it) comes back too, if it
/// arrives while its instruction is among the last few hundred answered: a
/// caller tells it by its reply_to id, answered already, and counts it.
class instruction_stream {
 public:
  virtual ~instruction_stream() = default;
  /// Sends instructions into the stream, each answered within `timeout_s`;
  /// returns their message ids (empty for one the grid did not accept).
  virtual std::vector<std::string> send(std::vector<message> msgs, double timeout_s) = 0;
  /// The next reply, or nothing when `timeout_s` passed first (or the run
  /// was asked to stop). Replies to instructions sent by this stream only.
  virtual std::optional<message> next(double timeout_s) = 0;
};

/// Flower's Grid: how a ServerApp talks to the nodes of its run. One abstract
/// seam with an in-process and a remote implementation behind it; a ServerApp
/// never knows which one it has. Calls block the calling thread.
class grid {
 public:
  virtual ~grid() = default;

  /// The run this grid serves (Flower's `grid.run.run_id`); create_message
  /// stamps it on every instruction.
  virtual uint64_t run_id() const = 0;

  /// The ids of the nodes connected now.
  virtual std::vector<uint64_t> node_ids() = 0;

  /// Blocks until at least `n` nodes are connected or `timeout_s` passed;
  /// returns how many are connected.
  virtual size_t wait_for_nodes(size_t n, double timeout_s) = 0;

  /// Builds an instruction for `dst_node_id` in this run.
  expected<message> create_message(record_dict content, std::string message_type,
                                   uint64_t dst_node_id, std::string group_id = {},
                                   double ttl = default_ttl_seconds) {
    return make_instruction(std::move(content), std::move(message_type), dst_node_id,
                            std::move(group_id), ttl, run_id());
  }

  /// Sends instructions; returns their message ids (an empty id for a message
  /// that was not accepted, e.g. addressed to an unknown node, whose error
  /// reply can then be pulled under the id the grid logged).
  virtual std::vector<std::string> push_messages(std::vector<message> msgs) = 0;

  /// Returns and forgets the replies that arrived for `message_ids` so far.
  virtual std::vector<message> pull_messages(const std::vector<std::string>& message_ids) = 0;

  /// Sends `msgs` and hands each reply to `sink` as it arrives, until every
  /// instruction got a reply or `timeout_s` passed.
  virtual stream_report send_and_stream(std::vector<message> msgs, double timeout_s,
                                        reply_sink& sink) = 0;

  /// Opens a stream for instructions sent without a round barrier. At most
  /// one is open at a time; it closes when the returned object goes (its
  /// instructions still in flight are forgotten, their replies dropped).
  virtual std::unique_ptr<instruction_stream> open_stream() = 0;

  /// Flower's send_and_receive: whatever replies arrived by the timeout.
  std::vector<message> send_and_receive(std::vector<message> msgs, double timeout_s);
};

}  // namespace stamen
