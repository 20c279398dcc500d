#include "actors/fault_stage.hpp"

#include "runtime/secagg/secagg_protocol.hpp"

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstring>
#include <optional>

namespace stamen {

namespace {

using self_ptr = fault_stage_actor::stateful_pointer<fault_stage_state>;

std::chrono::microseconds after_ms(double ms) {
  return std::chrono::microseconds(static_cast<int64_t>(ms * 1000));
}

void kill_node(self_ptr self) {
  if (self->state.node) caf::anon_send_exit(self->state.node, caf::exit_reason::kill);
}

// Kills the node and has it brought back `after_ms` later, fresh.
void restart_node(self_ptr self, double down_ms) {
  auto& st = self->state;
  if (st.respawner)
    self->delayed_send(st.respawner, after_ms(down_ms), restart_atom::value, st.node_id);
  kill_node(self);
}

// What the plan does to one instruction on its way to the node.
struct instruction_faults {
  bool deliver = true;
  bool kill_now = false;
  std::optional<double> restart_now_ms;  ///< restart before delivery, back after this long
  double delay_ms = 0;
  std::optional<double> kill_after_ms;
  fault_stage_state::reply_faults reply;

  bool touches_reply() const {
    return reply.drop || reply.duplicate || reply.corrupt || reply.crash_after ||
           reply.hold_ms > 0 || reply.poison;
  }
};

instruction_faults match(self_ptr self, const envelope& env) {
  auto& st = self->state;
  instruction_faults out;
  auto msg = decode(env.bytes, env.content, st.codec);
  auto phase = fault_phase::any;
  std::string stage;  // a SecAgg+ stage, which a rule may pick
  if (msg) {
    phase = phase_of(msg->meta().message_type);
    if (msg->has_content())
      if (auto* sa = msg->content().configs(secagg::record_key))
        if (auto* v = sa->get("stage"))
          if (auto* s = std::get_if<std::string>(v)) stage = *s;
    try {
      out.reply.round = std::stoll(msg->meta().group_id);
    } catch (const std::exception&) {
      out.reply.round = 0;  // not a strategy round: only rules for every round apply
    }
  }
  auto round = out.reply.round;
  for (auto* rule : st.faults->match(round, phase, st.node_id, stage)) {
    st.faults->record({round, st.node_id, -1, rule->action, phase});
    switch (rule->action) {
      case fault_action::partition: out.deliver = false, out.reply.drop = true; break;
      case fault_action::drop:
        if (rule->target == drop_target::instruction) out.deliver = false;
        else out.reply.drop = true;
        break;
      case fault_action::delay: out.delay_ms += rule->delay_ms; break;
      case fault_action::slow: out.reply.hold_ms += rule->delay_ms; break;
      case fault_action::duplicate: out.reply.duplicate = true; break;
      case fault_action::corrupt: out.reply.corrupt = true; break;
      case fault_action::poison:
        out.reply.poison = rule->poison;
        out.reply.poison_seed = st.faults->noise(round, st.node_id);
        if (msg && msg->has_content()) out.reply.instruction = msg->content();
        break;
      case fault_action::crash:
        if (rule->when == crash_point::before) out.kill_now = true, out.deliver = false;
        else if (rule->when == crash_point::during) out.kill_after_ms = rule->delay_ms;
        else out.reply.crash_after = true;
        break;
      case fault_action::restart:
        if (rule->when == crash_point::before) out.restart_now_ms = rule->delay_ms, out.deliver = false;
        else out.reply.crash_after = true, out.reply.restart_after_ms = rule->delay_ms;
        break;
    }
  }
  return out;
}

void on_instruction(self_ptr self, envelope& env) {
  auto& st = self->state;
  auto f = match(self, env);
  if (f.kill_now || f.restart_now_ms) {
    // The node dies before it sees the instruction; the grid then answers
    // for everything it owed, this one included.
    return f.restart_now_ms ? restart_node(self, *f.restart_now_ms) : kill_node(self);
  }
  if (!f.deliver) return;
  if (f.touches_reply()) st.replies.insert_or_assign(env.message_id, f.reply);
  if (f.delay_ms > 0)
    self->delayed_send(st.node, after_ms(f.delay_ms), instruct_atom::value, std::move(env));
  else
    self->send(st.node, instruct_atom::value, std::move(env));
  if (f.kill_after_ms)
    self->delayed_send(self, after_ms(*f.kill_after_ms + f.delay_ms), crash_atom::value);
}

// The segment table is always hit, so decoding must fail; a few more bytes
// are flipped where the seed says.
buffer corrupted(const buffer& bytes, uint64_t noise) {
  auto [copy, raw] = buffer::allocate_for_overwrite(bytes.size());
  std::memcpy(raw, bytes.data(), bytes.size());
  for (size_t k = 0; k < 4 && k < bytes.size(); ++k) raw[k] ^= std::byte{0xff};
  for (int k = 0; k < 4 && bytes.size() > 8; ++k, noise >>= 16)
    raw[8 + noise % (bytes.size() - 8)] ^= std::byte{0x5a};
  return copy;
}

// A valid but malicious reply: decoded, its update changed, encoded again.
// A reply that does not decode, or is an error, goes on unchanged.
void poison_reply(self_ptr self, envelope& reply, const fault_stage_state::reply_faults& f) {
  auto& st = self->state;
  auto msg = decode(reply.bytes, reply.content, st.codec);
  if (!msg || !msg->has_content()) return;
  poison_content(msg->content(), f.instruction, *f.poison, f.poison_seed);
  auto bytes = encode(*msg, st.codec);
  if (!bytes) return;
  reply.bytes = std::move(*bytes);
  reply.content = buffer{};
}

void on_reply(self_ptr self, envelope& reply) {
  auto& st = self->state;
  auto i = st.replies.find(reply.reply_to);
  if (i == st.replies.end()) return self->send(st.upstream, reply_atom::value, std::move(reply));
  if (i->second.hold_ms > 0) {
    // A slow node: the reply comes back later, as if compute took longer.
    auto ms = i->second.hold_ms;
    i->second.hold_ms = 0;
    self->delayed_send(fault_stage_actor{self}, after_ms(ms), reply_atom::value, std::move(reply));
    return;
  }
  auto f = i->second;
  st.replies.erase(i);
  if (!f.drop) {
    if (f.poison) poison_reply(self, reply, f);
    if (f.corrupt) reply.bytes = corrupted(reply.bytes, st.faults->noise(f.round, st.node_id));
    if (f.duplicate) self->send(st.upstream, reply_atom::value, reply);
    // A node that crashes right after replying leaves with its reply, in
    // one message: between two messages (or the reply and this stage's
    // down message) a loaded machine may let the reply wake the ServerApp,
    // whose next sampling would still count the node as there.
    if (f.crash_after) self->send(st.upstream, leave_atom::value, st.node_id, self->id(), std::move(reply));
    else self->send(st.upstream, reply_atom::value, std::move(reply));
  } else if (f.crash_after) {
    self->send(st.upstream, leave_atom::value, st.node_id, self->id());
  }
  if (f.crash_after) {
    if (f.restart_after_ms) restart_node(self, *f.restart_after_ms);
    else kill_node(self);
    // The stage dies now rather than when the node's exit reaches it over
    // their link: its down message then sits in the grid's mailbox right
    // behind the reply it just sent, so the grid knows the node is gone
    // before the ServerApp, woken by that reply, can sample the next round.
    self->quit(caf::exit_reason::kill);
  }
}

// Registers the node upstream under its id; a refusal is tried again for
// about a second (a restarted node's previous incarnation may not be gone
// there yet), then stops the stage and with it (linked) the node.
void register_upstream(self_ptr self) {
  auto& st = self->state;
  self->request(st.upstream, caf::infinite, register_atom::value, st.node_id,
                supernode_actor{self})
      .then([self](bool ok) {
        auto& st = self->state;
        if (!ok && ++st.register_attempts < 50) {
          self->delayed_send(self, std::chrono::milliseconds(20), reconnect_atom::value);
          return;
        }
        if (!ok) self->quit(caf::sec::invalid_argument);
      });
}

}  // namespace

fault_stage_actor::behavior_type fault_stage(self_ptr self, grid_actor upstream,
                                             std::shared_ptr<fault_injector> faults,
                                             codec_options codec, respawner_actor respawner) {
  auto& st = self->state;
  st.upstream = std::move(upstream);
  st.faults = std::move(faults);
  st.codec = codec;
  st.respawner = std::move(respawner);
  return {
    // Linked both ways: a node that dies takes its stage along (and the
    // grid, which monitors the stage, answers for what it owed).
    [self](join_atom, uint64_t node_id, supernode_actor node) {
      auto& st = self->state;
      st.node_id = node_id;
      st.node = node;
      self->link_to(node);
      register_upstream(self);
    },
    // The link already tells the stage (and the grid, through the stage's
    // own end) that the node is gone.
    [](leave_atom, uint64_t, caf::actor_id) {},
    [self](reconnect_atom) { register_upstream(self); },
    [self](instruct_atom, envelope& env) { on_instruction(self, env); },
    [self](reply_atom, envelope& reply) { on_reply(self, reply); },
    [self](crash_atom) { kill_node(self); },
    [](done_atom, envelope&, record_dict&) {},
  };
}

}  // namespace stamen
