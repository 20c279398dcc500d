#include "actors/grid_actor.hpp"

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <chrono>
#include <unordered_set>

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
  auto& p = i->second;
  if (p.node_id != reply.node_id) {
    // A node answers only for what it was sent: over a network, a reply's
    // node id is the connection's, so this is a peer claiming another's work.
    st.log.warn("grid: dropped reply '" + reply.message_id + "' from node " +
                std::to_string(reply.node_id) + " to message '" + reply.reply_to +
                "', which was sent to node " + std::to_string(p.node_id));
    return;
  }
  if (!p.streamed) {
    st.inbox.insert_or_assign(reply.reply_to, std::move(reply));
    st.owed.erase(i);
    return;
  }
  // The entry stays, without its bytes, until the batch is cancelled: a
  // second reply to the same instruction then reaches the stream, marked,
  // and is counted there as a failure.
  if (p.answered) {
    self->send(p.stream, duplicate_atom::value, std::move(reply));
    return;
  }
  p.answered = true;
  p.instruction = buffer{};
  p.content = buffer{};
  p.content_parts = {};
  self->send(p.stream, reply_atom::value, std::move(reply));
}

// Builds the error reply that stands for a reply a node will never send.
envelope synthesize(self_ptr self, const std::string& message_id, const grid_state::pending& p,
                    int64_t code, const std::string& reason) {
  auto& st = self->state;
  // Content in parts is joined here only: a node died with it in flight.
  auto content = p.content_parts.empty() ? p.content : buffer::join(p.content_parts);
  auto instruction = decode(p.instruction, content, st.codec);
  auto reply = instruction ? make_error_reply(*instruction, {code, reason})
                           : make_error_reply_to(message_id, p.node_id, {code, reason});
  reply.meta().message_id = "grid-" + std::to_string(++st.synthesized);
  auto bytes = encode(reply, st.codec);
  return envelope{reply.meta().message_id, message_id, p.node_id, 0, std::move(*bytes), {}};
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

void accept_instructions(self_ptr self, std::vector<envelope>& msgs, reply_stream_actor stream,
                         bool streamed) {
  auto& st = self->state;
  for (auto& env : msgs) {
    grid_state::pending p{env.node_id, env.deadline, env.bytes, env.content, env.content_parts,
                          stream, streamed};
    auto n = st.nodes.find(env.node_id);
    if (n == st.nodes.end()) {
      // Unknown or departed node: answer at once for it.
      auto reply = synthesize(self, env.message_id, p, error_code::node_unavailable,
                              "node " + std::to_string(env.node_id) + " is not connected");
      st.owed.emplace(env.message_id, std::move(p));
      deliver(self, std::move(reply));
      continue;
    }
    st.owed.emplace(env.message_id, std::move(p));
    self->send(n->second, instruct_atom::value, std::move(env));
  }
}

// Nodes are gone (a node died or left, or a link with its many nodes went):
// everything they still owed is answered with an error reply.
void on_nodes_gone(self_ptr self, const std::vector<uint64_t>& ids, const std::string& why) {
  auto& st = self->state;
  std::unordered_set<uint64_t> dead;
  for (auto id : ids)
    if (st.nodes.erase(id) > 0) dead.insert(id);
  if (dead.empty()) return;
  // One scan of what is outstanding (not a per-node index): deaths are
  // rare, and an index would cost every node memory and every message a
  // hash. A link of many nodes is one scan too.
  std::vector<std::string> owed;
  for (auto& [id, p] : st.owed)
    if (!p.answered && dead.count(p.node_id) > 0) owed.push_back(id);
  // A node that owed nothing is news only at debug level: a supernode
  // process of a thousand nodes that goes away is one line already.
  auto who = ids.size() == 1 ? "node " + std::to_string(ids.front()) + " is"
                             : std::to_string(dead.size()) + " nodes (" + std::to_string(ids.front()) + "..) are";
  auto line = "grid: " + who + " down (" + why + "), answering for " +
              std::to_string(owed.size()) + " instruction(s)";
  if (owed.empty()) st.log.debug(line);
  else st.log.warn(line);
  for (auto& id : owed) {
    auto p = st.owed.find(id);
    if (p == st.owed.end()) continue;
    deliver(self, synthesize(self, id, p->second, error_code::node_unavailable,
                             "node " + std::to_string(p->second.node_id) + " became unavailable"));
  }
}

// A monitored node (or link) died.
void on_node_down(self_ptr self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto a = st.node_by_addr.find(dm.source);
  if (a == st.node_by_addr.end()) return;
  auto ids = std::move(a->second);
  st.node_by_addr.erase(a);
  // Only the ids this actor still holds: one that left already (a node's
  // last reply with its leave) may be held by its next incarnation now.
  ids.erase(std::remove_if(ids.begin(), ids.end(),
                           [&](uint64_t id) {
                             auto n = st.nodes.find(id);
                             return n == st.nodes.end() || n->second.address() != dm.source;
                           }),
            ids.end());
  on_nodes_gone(self, ids, to_string(dm.reason));
}

// Whether `id` is neither reserved nor held by a node already.
bool id_free(self_ptr self, uint64_t id) {
  return id != 0 && id != server_node_id && self->state.nodes.count(id) == 0;
}

void refuse(self_ptr self, uint64_t id, size_t batch) {
  self->state.log.warn("grid: refused node id " + std::to_string(id) + " (reserved or taken)" +
                       (batch > 1 ? " and with it " + std::to_string(batch - 1) + " more" : ""));
}

bool on_register(self_ptr self, const std::vector<uint64_t>& ids, const supernode_actor& node) {
  auto& st = self->state;
  std::unordered_set<uint64_t> fresh;  // an id twice in one batch is taken too
  for (auto id : ids)
    if (!id_free(self, id) || !fresh.insert(id).second) {
      refuse(self, id, ids.size());
      return false;
    }
  auto [entry, first] = st.node_by_addr.try_emplace(node.address());
  if (first) self->monitor(node);  // once per actor: one down message for all its nodes
  for (auto id : ids) {
    entry->second.push_back(id);
    st.nodes.emplace(id, node);
  }
  answer_waiters(self);
  return true;
}

// A SuperNode that reports its own end: not monitored.
void on_join(self_ptr self, uint64_t id, const supernode_actor& node) {
  if (!id_free(self, id)) {
    refuse(self, id, 1);
    self->send_exit(node, caf::sec::invalid_argument);
    return;
  }
  self->state.nodes.emplace(id, node);
  answer_waiters(self);
}

void on_leave(self_ptr self, uint64_t id, caf::actor_id who) {
  auto& st = self->state;
  // Only the actor that joined as `id` takes it along (a refused one, or a
  // restarted node's previous incarnation, leaves nothing).
  auto n = st.nodes.find(id);
  if (n == st.nodes.end() || n->second.id() != who) return;
  on_nodes_gone(self, {id}, "ended");
}

caf::result<uint64_t> on_wait(self_ptr self, uint64_t n, caf::timespan timeout) {
  auto& st = self->state;
  // An anonymous (wait, 0, 0) is the wake-up call of an earlier waiter.
  expire_waiters(self);
  if (st.nodes.size() >= n) return static_cast<uint64_t>(st.nodes.size());
  auto promise = self->make_response_promise<uint64_t>();
  st.waiters.push_back({n, std::chrono::steady_clock::now() + timeout, promise});
  caf::delayed_anon_send(grid_actor{self}, timeout, wait_atom::value, uint64_t{0},
                         caf::timespan{0});
  return promise;
}

std::vector<envelope> on_pull(self_ptr self, const std::vector<std::string>& ids) {
  auto& st = self->state;
  std::vector<envelope> out;
  double now = steady_seconds();
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
}

}  // namespace

grid_actor::behavior_type grid_behavior(grid_actor::stateful_pointer<grid_state> self,
                                        codec_options codec, logger log) {
  self->state.codec = codec;
  self->state.log = std::move(log);
  self->set_down_handler([self](caf::down_msg& dm) { on_node_down(self, dm); });
  // Told to exit (the process goes down): whoever waits for nodes is
  // answered now with the count it got, or its thread would wait forever
  // on a promise that died with this actor.
  self->set_exit_handler([self](caf::exit_msg& m) {
    auto n = static_cast<uint64_t>(self->state.nodes.size());
    for (auto& w : self->state.waiters) w.promise.deliver(n);
    self->state.waiters.clear();
    self->quit(m.reason);
  });
  return {
    [self](register_atom, uint64_t node_id, supernode_actor node) {
      return on_register(self, std::vector<uint64_t>{node_id}, node);
    },
    [self](register_atom, const std::vector<uint64_t>& ids, supernode_actor node) {
      return on_register(self, ids, node);
    },
    [self](join_atom, uint64_t node_id, supernode_actor node) { on_join(self, node_id, node); },
    [self](leave_atom, uint64_t node_id, caf::actor_id who) { on_leave(self, node_id, who); },
    [self](leave_atom, uint64_t node_id, caf::actor_id who, envelope& last) {
      deliver(self, std::move(last));
      on_leave(self, node_id, who);
    },
    [self](nodes_atom) {
      std::vector<uint64_t> ids;
      ids.reserve(self->state.nodes.size());
      for (auto& [id, n] : self->state.nodes) ids.push_back(id);
      return ids;
    },
    [self](wait_atom, uint64_t n, caf::timespan timeout) { return on_wait(self, n, timeout); },
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
    [self](pull_atom, const std::vector<std::string>& ids) { return on_pull(self, ids); },
  };
}

}  // namespace stamen
