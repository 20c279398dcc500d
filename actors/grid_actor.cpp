#include "actors/grid_actor.hpp"

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>

namespace stamen {

namespace {

using self_ptr = grid_actor::stateful_pointer<grid_state>;

// Sends a reply to where its instruction's replies go.
void deliver(self_ptr self, envelope reply) {
  auto& st = self->state;
  auto i = st.owed.find(reply.reply_to);
  if (i == st.owed.end()) {
    st.log.debug("grid: dropped reply '" + reply.message_id + "' to unknown or expired message '" +
                  reply.reply_to + "'");
    return;
  }
  if (i->second.node_id != reply.node_id) {
    // A node answers only for what it was sent: over a network, a reply's
    // node id is the connection's, so this is a peer claiming another's work.
    st.log.warn("grid: dropped reply '" + reply.message_id + "' from node " +
                std::to_string(reply.node_id) + " to message '" + reply.reply_to +
                "', which was sent to node " + std::to_string(i->second.node_id));
    return;
  }
  if (i->second.hold_reply_ms > 0) {
    // A slow node: the reply comes back later, as if compute took longer.
    auto ms = i->second.hold_reply_ms;
    i->second.hold_reply_ms = 0;
    self->delayed_send(grid_actor{self}, std::chrono::microseconds(static_cast<int64_t>(ms * 1000)),
                       reply_atom::value, std::move(reply));
    return;
  }
  auto p = std::move(i->second);
  st.owed.erase(i);
  if (p.drop_reply) return;
  if (p.corrupt) {
    // The segment table is always hit, so decoding must fail; a few more
    // bytes are flipped where the seed says.
    auto [copy, raw] = buffer::allocate(reply.bytes.size());
    std::memcpy(raw, reply.bytes.data(), reply.bytes.size());
    for (size_t k = 0; k < 4 && k < reply.bytes.size(); ++k) raw[k] ^= std::byte{0xff};
    auto noise = st.faults->noise(p.round, p.node_id);
    for (int k = 0; k < 4 && reply.bytes.size() > 8; ++k, noise >>= 16)
      raw[8 + noise % (reply.bytes.size() - 8)] ^= std::byte{0x5a};
    reply.bytes = copy;
  }
  if (p.crash_after) {
    if (auto n = st.nodes.find(p.node_id); n != st.nodes.end())
      caf::anon_send_exit(n->second, caf::exit_reason::kill);
  }
  if (p.streamed) {
    if (p.duplicate) self->send(p.stream, reply_atom::value, reply);
    self->send(p.stream, reply_atom::value, std::move(reply));
  } else {
    st.inbox.insert_or_assign(reply.reply_to, std::move(reply));
  }
}

// Builds the error reply that stands for a reply a node will never send.
envelope synthesize(self_ptr self, const std::string& message_id, const grid_state::pending& p,
                    int64_t code, const std::string& reason) {
  auto& st = self->state;
  auto instruction = decode(p.instruction, p.content, st.codec);
  auto reply = instruction ? make_error_reply(*instruction, {code, reason})
                           : make_error_reply_to(message_id, p.node_id, {code, reason});
  reply.meta().message_id = "grid-" + std::to_string(++st.synthesized);
  auto bytes = encode(reply, st.codec);
  return envelope{reply.meta().message_id, message_id, p.node_id, 0, std::move(*bytes)};
}

void answer_waiters(self_ptr self) {
  auto& st = self->state;
  auto n = st.nodes.size();
  auto& ws = st.waiters;
  for (auto& w : ws)
    if (w.n <= n) w.promise.deliver(static_cast<uint64_t>(n));
  ws.erase(std::remove_if(ws.begin(), ws.end(), [n](auto& w) { return w.n <= n; }), ws.end());
}

// Answers the waiters whose timeout passed with the node count they got.
void expire_waiters(self_ptr self) {
  auto& st = self->state;
  auto now = std::chrono::steady_clock::now();
  auto n = static_cast<uint64_t>(st.nodes.size());
  auto& ws = st.waiters;
  for (auto& w : ws)
    if (w.deadline <= now) w.promise.deliver(n);
  ws.erase(std::remove_if(ws.begin(), ws.end(), [now](auto& w) { return w.deadline <= now; }),
           ws.end());
}

// Applies the fault plan to an instruction on its way to `node`.
void inject(self_ptr self, envelope& env, grid_state::pending& p, const supernode_actor& node) {
  auto& st = self->state;
  auto msg = decode(env.bytes, env.content, st.codec);
  int64_t round = 0;
  auto phase = fault_phase::any;
  if (msg) {
    phase = phase_of(msg->meta().message_type);
    try {
      round = std::stoll(msg->meta().group_id);
    } catch (const std::exception&) {
      round = 0;  // not a strategy round: only rules for every round apply
    }
  }
  p.round = round;
  bool deliver_it = true, kill_now = false;
  double delay_ms = 0;
  std::optional<double> kill_after_ms;
  for (auto* rule : st.faults->match(round, phase, env.node_id)) {
    st.faults->record({round, env.node_id, -1, rule->action, phase});
    switch (rule->action) {
      case fault_action::partition: deliver_it = false, p.drop_reply = true; break;
      case fault_action::drop:
        if (rule->target == drop_target::instruction) deliver_it = false;
        else p.drop_reply = true;
        break;
      case fault_action::delay: delay_ms += rule->delay_ms; break;
      case fault_action::slow: p.hold_reply_ms += rule->delay_ms; break;
      case fault_action::duplicate: p.duplicate = true; break;
      case fault_action::corrupt: p.corrupt = true; break;
      case fault_action::crash:
        if (rule->when == crash_point::before) kill_now = true, deliver_it = false;
        else if (rule->when == crash_point::during) kill_after_ms = rule->delay_ms;
        else p.crash_after = true;
        break;
    }
  }
  auto node_id = env.node_id;
  st.owed.emplace(env.message_id, std::move(p));
  if (kill_now) {
    // The node dies before it sees the instruction; its down message then
    // answers for everything it owed, this one included.
    caf::anon_send_exit(node, caf::exit_reason::kill);
    return;
  }
  if (deliver_it) {
    if (delay_ms > 0)
      self->delayed_send(node, std::chrono::microseconds(static_cast<int64_t>(delay_ms * 1000)),
                         instruct_atom::value, std::move(env));
    else
      self->send(node, instruct_atom::value, std::move(env));
  }
  if (kill_after_ms) {
    auto d = std::chrono::microseconds(static_cast<int64_t>(*kill_after_ms * 1000 + delay_ms * 1000));
    self->delayed_send(grid_actor{self}, d, crash_atom::value, node_id);
  }
}

void accept_instructions(self_ptr self, std::vector<envelope>& msgs, reply_stream_actor stream,
                         bool streamed) {
  auto& st = self->state;
  for (auto& env : msgs) {
    grid_state::pending p{env.node_id, env.deadline, env.bytes, env.content, stream, streamed};
    auto n = st.nodes.find(env.node_id);
    if (n == st.nodes.end()) {
      // Unknown or departed node: answer at once for it.
      auto reply = synthesize(self, env.message_id, p, error_code::node_unavailable,
                              "node " + std::to_string(env.node_id) + " is not connected");
      st.owed.emplace(env.message_id, std::move(p));
      deliver(self, std::move(reply));
      continue;
    }
    if (st.faults) {
      inject(self, env, p, n->second);
      continue;
    }
    st.owed.emplace(env.message_id, std::move(p));
    self->send(n->second, instruct_atom::value, std::move(env));
  }
}

}  // namespace

grid_actor::behavior_type grid_behavior(grid_actor::stateful_pointer<grid_state> self,
                                        codec_options codec, logger log,
                                        std::shared_ptr<fault_injector> faults) {
  self->state.faults = std::move(faults);
  self->state.codec = codec;
  self->state.log = std::move(log);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto a = st.node_by_addr.find(dm.source);
    if (a == st.node_by_addr.end()) return;
    auto node_id = a->second;
    st.node_by_addr.erase(a);
    auto n = st.nodes.find(node_id);
    if (n == st.nodes.end()) return;
    st.nodes.erase(n);
    // A scan of what is outstanding (not a per-node index): deaths are rare,
    // and an index would cost every node memory and every message a hash.
    std::vector<std::string> owed;
    for (auto& [id, p] : st.owed)
      if (p.node_id == node_id) owed.push_back(id);
    st.log.warn("grid: node " + std::to_string(node_id) + " is down (" + to_string(dm.reason) +
                "), answering for " + std::to_string(owed.size()) + " instruction(s)");
    for (auto& id : owed) {
      auto p = st.owed.find(id);
      if (p == st.owed.end()) continue;
      deliver(self, synthesize(self, id, p->second, error_code::node_unavailable,
                               "node " + std::to_string(node_id) + " became unavailable"));
    }
  });
  return {
    [self](register_atom, uint64_t node_id, supernode_actor node) -> bool {
      auto& st = self->state;
      if (node_id == 0 || node_id == server_node_id || st.nodes.count(node_id) > 0) {
        st.log.warn("grid: refused node id " + std::to_string(node_id) + " (reserved or taken)");
        return false;
      }
      self->monitor(node);
      st.node_by_addr.emplace(node.address(), node_id);
      st.nodes.emplace(node_id, node);
      answer_waiters(self);
      return true;
    },
    [self](nodes_atom) {
      std::vector<uint64_t> ids;
      ids.reserve(self->state.nodes.size());
      for (auto& [id, n] : self->state.nodes) ids.push_back(id);
      return ids;
    },
    [self](wait_atom, uint64_t n, caf::timespan timeout) -> caf::result<uint64_t> {
      auto& st = self->state;
      // An anonymous (wait, 0, 0) is the wake-up call of an earlier waiter.
      expire_waiters(self);
      if (st.nodes.size() >= n) return static_cast<uint64_t>(st.nodes.size());
      auto promise = self->make_response_promise<uint64_t>();
      st.waiters.push_back({n, std::chrono::steady_clock::now() + timeout, promise});
      caf::delayed_anon_send(grid_actor{self}, timeout, wait_atom::value, uint64_t{0},
                             caf::timespan{0});
      return promise;
    },
    [self](push_atom, std::vector<envelope>& msgs) {
      std::vector<std::string> ids;
      for (auto& m : msgs) ids.push_back(m.message_id);
      accept_instructions(self, msgs, reply_stream_actor{}, false);
      return ids;
    },
    [self](stream_atom, std::vector<envelope>& msgs, reply_stream_actor stream) {
      accept_instructions(self, msgs, std::move(stream), true);
    },
    [self](reply_atom, envelope& reply) { deliver(self, std::move(reply)); },
    [self](cancel_atom, const std::vector<std::string>& ids) {
      for (auto& id : ids) self->state.owed.erase(id);
    },
    [self](crash_atom, uint64_t node_id) {
      if (auto n = self->state.nodes.find(node_id); n != self->state.nodes.end())
        caf::anon_send_exit(n->second, caf::exit_reason::kill);
    },
    [self](pull_atom, const std::vector<std::string>& ids) {
      auto& st = self->state;
      std::vector<envelope> out;
      double now = now_seconds();
      for (auto& id : ids) {
        if (auto i = st.inbox.find(id); i != st.inbox.end()) {
          out.push_back(std::move(i->second));
          st.inbox.erase(i);
          continue;
        }
        // Past its TTL, an instruction's reply is reported unavailable.
        auto p = st.owed.find(id);
        if (p != st.owed.end() && !p->second.streamed && p->second.deadline > 0 &&
            p->second.deadline < now) {
          auto reply = synthesize(self, id, p->second, error_code::reply_unavailable,
                                  "no reply from node " + std::to_string(p->second.node_id) +
                                      " within the message's TTL");
          st.owed.erase(p);
          out.push_back(std::move(reply));
        }
      }
      return out;
    },
  };
}

}  // namespace stamen
