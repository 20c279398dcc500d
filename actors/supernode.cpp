#include "actors/supernode.hpp"

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

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
    if (st.busy || st.queue.empty()) return;
    st.busy = true;
    auto in = std::move(st.queue.front());
    st.queue.pop_front();
    // The job holds what it needs by value or shared pointer: it may outlive
    // this actor (a node killed mid-training), and then its reply is dropped.
    st.pool->post([me = supernode_actor{self}, app = st.app, ctx = st.ctx, in = std::move(in),
                   id = st.node_id, seq = st.replies++, codec = st.codec] {
      caf::anon_send(me, done_atom::value, answer_instruction(*app, *ctx, in, id, seq, codec));
    });
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
