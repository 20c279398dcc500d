#include "actors/supernode.hpp"

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>

namespace stamen {

envelope answer_instruction(const client_app& app, context& ctx, const envelope& in,
                            uint64_t node_id, uint64_t seq, const codec_options& codec, bool wire) {
  auto instruction = decode(in.bytes, in.content, codec);
  message reply;
  if (!instruction) {
    reply = make_error_reply_to(in.message_id, node_id,
                                {error_code::unknown, "node " + std::to_string(node_id) +
                                                          " could not decode instruction: " +
                                                          instruction.error().to_string()});
  } else {
    reply = app.handle(*instruction, ctx);
  }
  reply.meta().message_id = std::to_string(node_id) + "-" + std::to_string(seq);
  if (wire) {
    // The arrays go out from where they are (for an echo, the instruction's
    // own payload), not copied into an encoding first.
    if (auto parts = encode_parts(reply, codec)) {
      envelope out{reply.meta().message_id, in.message_id, node_id, 0, {}, {}};
      out.bytes_parts = std::move(*parts);
      return out;
    }
  }
  auto bytes = encode(reply, codec);
  if (!bytes) {
    message_error why{error_code::client_app_raised,
                      "reply cannot be sent: " + bytes.error().to_string()};
    auto err = instruction ? make_error_reply(*instruction, std::move(why))
                           : make_error_reply_to(in.message_id, node_id, std::move(why));
    err.meta().message_id = reply.meta().message_id;
    bytes = encode(err, codec);
  }
  return envelope{reply.meta().message_id, in.message_id, node_id, 0, std::move(*bytes), {}};
}

envelope expired_reply(const envelope& in, uint64_t node_id, uint64_t seq,
                       const codec_options& codec) {
  auto err = make_error_reply_to(in.message_id, node_id,
                                 {error_code::reply_unavailable,
                                  "node " + std::to_string(node_id) +
                                      " got the instruction after its deadline"});
  err.meta().message_id = std::to_string(node_id) + "-" + std::to_string(seq);
  auto bytes = encode(err, codec);
  return envelope{err.meta().message_id, in.message_id, node_id, 0, std::move(*bytes), {}};
}

std::shared_ptr<const node_common> share_common(const context& ctx, compute_pool* pool,
                                                const codec_options& codec,
                                                std::shared_ptr<const node_common> previous,
                                                bool wire_replies) {
  if (previous && previous->pool == pool && previous->wire_replies == wire_replies &&
      previous->codec.max_message_size == codec.max_message_size &&
      previous->codec.nesting_limit == codec.nesting_limit &&
      previous->codec.chunk_size == codec.chunk_size && previous->run.run_id == ctx.run_id &&
      previous->run.app_dir == ctx.app_dir && previous->run.run_dir == ctx.run_dir &&
      previous->run.run_config == ctx.run_config)
    return previous;
  auto c = std::make_shared<node_common>();
  c->pool = pool;
  c->codec = codec;
  c->wire_replies = wire_replies;
  c->run.run_id = ctx.run_id;
  c->run.run_config = ctx.run_config;
  c->run.app_dir = ctx.app_dir;
  c->run.run_dir = ctx.run_dir;
  return c;
}

// A million idle nodes are mostly CAF's actors: one more field here moves
// each into the next allocator size class (128 bytes more per node).
static_assert(sizeof(supernode_state) <= 120, "supernode_state outgrew its size class");

supernode_state::~supernode_state() {
  if (grid) caf::anon_send(grid, leave_atom::value, node_id, self);
}

namespace {

using node_ptr = supernode_actor::stateful_pointer<supernode_state>;

// The Context for one message: the run-wide part, the node's own, and its
// state, which the caller hands back with the reply.
context context_for(supernode_state& st) {
  context ctx = st.common->run;
  ctx.node_id = st.node_id;
  ctx.node_config = st.node_config;
  ctx.state = std::move(st.state);
  st.state = record_dict{};
  return ctx;
}

// Runs an instruction now (none is in flight).
void start(node_ptr self, envelope in) {
  auto& st = self->state;
  auto& common = *st.common;
  double left = in.deadline > 0 ? in.deadline - steady_seconds() : 0;
  if (in.deadline > 0 && left <= 0) {
    // Its round is over: no one waits for the reply, so no compute is spent.
    self->send(st.grid, reply_atom::value,
               expired_reply(in, st.node_id, st.replies++, common.codec));
    return;
  }
  st.busy = true;
  auto deadline = in.deadline > 0
                      ? compute_pool::clock_type::now() +
                            std::chrono::duration_cast<compute_pool::clock_type::duration>(
                                std::chrono::duration<double>(left))
                      : compute_pool::clock_type::time_point::max();
  // The job takes the node's state along and hands it back with the reply.
  // It holds what it needs by value or shared pointer: it may outlive this
  // actor (a node killed mid-training), and then its reply, and the state,
  // are dropped.
  common.pool->post(
      [me = supernode_actor{self}, app = st.app, ctx = context_for(st), in = std::move(in),
       id = st.node_id, seq = static_cast<uint64_t>(st.replies++),
       codec = common.codec, wire = common.wire_replies]() mutable {
        auto reply = answer_instruction(*app, ctx, in, id, seq, codec, wire);
        caf::anon_send(me, done_atom::value, std::move(reply), std::move(ctx.state));
      },
      deadline);
}

// Starts waiting instructions until one is in flight.
void start_waiting(node_ptr self) {
  auto& st = self->state;
  while (!st.busy && st.waiting) {
    auto in = std::move(st.waiting->front());
    st.waiting->pop_front();
    if (st.waiting->empty()) st.waiting.reset();
    start(self, std::move(in));
  }
}

}  // namespace

supernode_actor::behavior_type supernode_behavior(node_ptr self, supernode_config cfg,
                                                  node_uplink_actor grid) {
  auto& st = self->state;
  st.node_id = cfg.node_id;
  st.self = self->id();
  st.app = std::move(cfg.app);
  st.common = std::move(cfg.common);
  st.node_config = std::move(cfg.node_config);
  st.state = std::move(cfg.state);
  st.grid = grid;
  // One way: a taken id gets this actor stopped by the grid, which saves
  // every node the response handler a request would leave behind.
  self->send(grid, join_atom::value, st.node_id, supernode_actor{self});
  return {
    [self](instruct_atom, envelope& in) {
      auto& st = self->state;
      if (!st.busy) return start(self, std::move(in));
      if (!st.waiting) st.waiting = std::make_unique<std::deque<envelope>>();
      st.waiting->push_back(std::move(in));
    },
    [self](done_atom, envelope& reply, record_dict& state) {
      auto& st = self->state;
      st.state = std::move(state);
      self->send(st.grid, reply_atom::value, std::move(reply));
      st.busy = false;
      start_waiting(self);
    },
  };
}

}  // namespace stamen
