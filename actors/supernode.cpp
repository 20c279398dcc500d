#include "actors/supernode.hpp"

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>

namespace stamen {

envelope answer_instruction(const client_app& app, context& ctx, const envelope& in,
                            uint64_t node_id, uint64_t seq, const codec_options& codec) {
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
  auto bytes = encode(reply, codec);
  if (!bytes) {
    message_error why{error_code::client_app_raised,
                      "reply cannot be sent: " + bytes.error().to_string()};
    auto err = instruction ? make_error_reply(*instruction, std::move(why))
                           : make_error_reply_to(in.message_id, node_id, std::move(why));
    err.meta().message_id = reply.meta().message_id;
    bytes = encode(err, codec);
  }
  return envelope{reply.meta().message_id, in.message_id, node_id, 0, std::move(*bytes)};
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

supernode_actor::behavior_type supernode_behavior(supernode_actor::stateful_pointer<supernode_state> self,
                                         supernode_config cfg, node_uplink_actor grid) {
  auto& st = self->state;
  st.ctx = std::make_shared<context>(std::move(cfg.ctx));
  st.ctx->node_id = cfg.node_id;
  st.node_id = cfg.node_id;
  st.app = std::move(cfg.app);
  st.pool = cfg.pool;
  st.codec = cfg.codec;
  st.grid = grid;
  self->request(grid, caf::infinite, register_atom::value, st.node_id, supernode_actor{self})
      .then([self](bool accepted) {
        if (!accepted) self->quit(caf::sec::invalid_argument);  // id taken: the grid said why
      });
  auto start_next = [self] {
    auto& st = self->state;
    while (!st.busy && !st.queue.empty()) {
      auto in = std::move(st.queue.front());
      st.queue.pop_front();
      double left = in.deadline > 0 ? in.deadline - now_seconds() : 0;
      if (in.deadline > 0 && left <= 0) {
        // Its round is over: no one waits for the reply, so no compute is spent.
        self->send(st.grid, reply_atom::value,
                   expired_reply(in, st.node_id, st.replies++, st.codec));
        continue;
      }
      st.busy = true;
      auto deadline = in.deadline > 0
                          ? compute_pool::clock_type::now() +
                                std::chrono::duration_cast<compute_pool::clock_type::duration>(
                                    std::chrono::duration<double>(left))
                          : compute_pool::clock_type::time_point::max();
      // The job holds what it needs by value or shared pointer: it may outlive
      // this actor (a node killed mid-training), and then its reply is dropped.
      st.pool->post(
          [me = supernode_actor{self}, app = st.app, ctx = st.ctx, in = std::move(in),
           id = st.node_id, seq = st.replies++, codec = st.codec] {
            caf::anon_send(me, done_atom::value, answer_instruction(*app, *ctx, in, id, seq, codec));
          },
          deadline);
    }
  };
  return {
    [self, start_next](instruct_atom, envelope& in) {
      self->state.queue.push_back(std::move(in));
      start_next();
    },
    [self, start_next](done_atom, envelope& reply) {
      auto& st = self->state;
      self->send(st.grid, reply_atom::value, std::move(reply));
      st.busy = false;
      start_next();
    },
  };
}

}  // namespace stamen
