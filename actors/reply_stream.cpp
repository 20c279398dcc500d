#include "actors/reply_stream.hpp"

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace stamen {

namespace {

using self_ptr = reply_stream_actor::stateful_pointer<reply_stream_state>;

void deliver_result(self_ptr self) {
  auto& st = self->state;
  auto got = static_cast<uint64_t>(st.answered.size());
  // All answered: the caller needs no list.
  if (got == st.expected) st.answered.clear();
  st.promise->deliver(got, std::move(st.answered));
}

void finish(self_ptr self) {
  auto& st = self->state;
  if (st.done) return;
  st.done = true;
  st.sink = nullptr;
  if (st.promise) {
    deliver_result(self);
    self->quit();
  }
}

}  // namespace

reply_stream_actor::behavior_type reply_stream_behavior(self_ptr self, reply_sink* sink,
                                                        uint64_t expected, caf::timespan timeout,
                                                        codec_options codec) {
  auto& st = self->state;
  st.sink = sink;
  st.codec = codec;
  st.expected = expected;
  st.answered.reserve(expected);
  if (expected == 0)
    finish(self);
  else
    caf::delayed_anon_send(reply_stream_actor{self}, timeout, deadline_atom::value);
  // Decodes a reply and hands it on; false if the round is over.
  auto hand_on = [self](envelope& env) {
    auto& st = self->state;
    if (st.sink == nullptr) return false;  // the round is over: a late reply
    auto msg = decode(env.bytes, env.content, st.codec);
    env.bytes = buffer{};
    env.content = buffer{};
    if (msg) {
      st.sink->on_reply(*msg);
    } else {
      st.sink->on_reply(make_error_reply_to(
          env.reply_to, env.node_id,
          {error_code::unknown, "malformed reply: " + msg.error().to_string()}));
    }
    return true;
  };
  return {
    [self, hand_on](reply_atom, envelope& env) {
      auto& st = self->state;
      if (!hand_on(env)) return;
      st.answered.push_back(std::move(env.reply_to));
      // Closed by a message to itself rather than at once, so that whatever
      // is already queued behind this reply (a duplicate, say) is seen first.
      if (st.answered.size() == st.expected)
        self->send(reply_stream_actor{self}, deadline_atom::value);
    },
    [hand_on](duplicate_atom, envelope& env) { hand_on(env); },
    [self](await_atom) -> caf::result<uint64_t, std::vector<std::string>> {
      auto& st = self->state;
      st.promise = self->make_response_promise<uint64_t, std::vector<std::string>>();
      if (st.done) {
        deliver_result(self);
        self->quit();
      }
      return *st.promise;
    },
    [self](cancel_atom, uint64_t n) {
      auto& st = self->state;
      st.expected -= std::min(n, st.expected);
      if (!st.done && st.answered.size() >= st.expected)
        self->send(reply_stream_actor{self}, deadline_atom::value);
    },
    [self](deadline_atom) { finish(self); },
  };
}

namespace {

using open_ptr = reply_stream_actor::stateful_pointer<open_reply_stream_state>;

// The batch's timeout: what is still without a reply gets an error reply.
// The stream stays, for second copies of replies, until its instructions
// are forgotten.
void expire_open(open_ptr self) {
  auto& st = self->state;
  if (!st.sink) return;
  for (auto& [id, node] : st.outstanding)
    st.sink->on_reply(make_error_reply_to(
        id, node,
        {error_code::reply_unavailable, "no reply within the timeout of " +
                                            std::to_string(st.timeout_s) + "s"}));
  st.outstanding.clear();
}

}  // namespace

reply_stream_actor::behavior_type open_reply_stream_behavior(
    open_ptr self, std::shared_ptr<reply_sink> sink,
    std::vector<std::pair<std::string, uint64_t>> ids, double timeout_s, codec_options codec) {
  auto& st = self->state;
  st.sink = std::move(sink);
  st.codec = codec;
  st.timeout_s = timeout_s;
  st.remembered = ids.size();
  for (auto& [id, node] : ids) st.outstanding.emplace(id, node);
  if (st.outstanding.empty()) {
    self->quit();
  } else {
    auto span = std::chrono::duration_cast<caf::timespan>(std::chrono::duration<double>(timeout_s));
    caf::delayed_anon_send(reply_stream_actor{self}, span, deadline_atom::value);
  }
  auto hand_on = [self](envelope& env) {
    auto& st = self->state;
    auto msg = decode(env.bytes, env.content, st.codec);
    if (msg)
      st.sink->on_reply(*msg);
    else
      st.sink->on_reply(make_error_reply_to(
          env.reply_to, env.node_id,
          {error_code::unknown, "malformed reply: " + msg.error().to_string()}));
  };
  return {
    [self, hand_on](reply_atom, envelope& env) {
      auto& st = self->state;
      auto i = st.outstanding.find(env.reply_to);
      if (!st.sink || i == st.outstanding.end()) return;  // late: its error reply went already
      st.outstanding.erase(i);
      hand_on(env);
    },
    // A second copy of an answered instruction's reply (the grid tells it
    // apart): handed on too, so that the caller counts it.
    [self, hand_on](duplicate_atom, envelope& env) {
      if (self->state.sink) hand_on(env);
    },
    // The stream forgot `n` of this batch's instructions (answered a while
    // ago): once all are forgotten no second copy can come, and it goes.
    [self](cancel_atom, uint64_t n) {
      auto& st = self->state;
      st.remembered -= std::min(n, st.remembered);
      if (st.remembered == 0) {
        st.sink.reset();
        self->quit();
      }
    },
    [](await_atom) -> caf::result<uint64_t, std::vector<std::string>> {
      return {uint64_t{0}, std::vector<std::string>{}};
    },
    [self](deadline_atom) { expire_open(self); },
  };
}

}  // namespace stamen
