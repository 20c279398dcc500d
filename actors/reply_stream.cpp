#include "actors/reply_stream.hpp"

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace stamen {

namespace {

using self_ptr = reply_stream_actor::stateful_pointer<reply_stream_state>;

void finish(self_ptr self) {
  auto& st = self->state;
  if (st.result) return;
  st.sink = nullptr;
  st.result.emplace(st.outstanding.begin(), st.outstanding.end());
  if (st.promise) {
    st.promise->deliver(*st.result);
    self->quit();
  }
}

}  // namespace

reply_stream_actor::behavior_type reply_stream_behavior(self_ptr self, reply_sink* sink,
                                               std::vector<std::string> ids,
                                               caf::timespan timeout, codec_options codec) {
  auto& st = self->state;
  st.sink = sink;
  st.codec = codec;
  st.outstanding.insert(ids.begin(), ids.end());
  if (st.outstanding.empty())
    finish(self);
  else
    caf::delayed_anon_send(reply_stream_actor{self}, timeout, deadline_atom::value);
  return {
    [self](reply_atom, envelope& env) {
      auto& st = self->state;
      if (st.sink == nullptr) return;  // the round is over: a late reply
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
      st.outstanding.erase(env.reply_to);
      // Closed by a message to itself rather than at once, so that whatever
      // is already queued behind this reply (a duplicate, say) is seen first.
      if (st.outstanding.empty()) self->send(reply_stream_actor{self}, deadline_atom::value);
    },
    [self](await_atom) -> caf::result<std::vector<std::string>> {
      auto& st = self->state;
      if (st.result) {
        self->quit();
        return *st.result;
      }
      auto p = self->make_response_promise<std::vector<std::string>>();
      st.promise = p;
      return p;
    },
    [self](deadline_atom) { finish(self); },
  };
}

namespace {

using open_ptr = reply_stream_actor::stateful_pointer<open_reply_stream_state>;

void close_open(open_ptr self) {
  auto& st = self->state;
  if (!st.sink) return;
  for (auto& [id, node] : st.outstanding)
    st.sink->on_reply(make_error_reply_to(
        id, node,
        {error_code::reply_unavailable, "no reply within the timeout of " +
                                            std::to_string(st.timeout_s) + "s"}));
  st.outstanding.clear();
  st.sink.reset();
  self->quit();
}

}  // namespace

reply_stream_actor::behavior_type open_reply_stream_behavior(
    open_ptr self, std::shared_ptr<reply_sink> sink,
    std::vector<std::pair<std::string, uint64_t>> ids, double timeout_s, codec_options codec) {
  auto& st = self->state;
  st.sink = std::move(sink);
  st.codec = codec;
  st.timeout_s = timeout_s;
  for (auto& [id, node] : ids) st.outstanding.emplace(id, node);
  if (st.outstanding.empty()) {
    self->send(reply_stream_actor{self}, deadline_atom::value);
  } else {
    auto span = std::chrono::duration_cast<caf::timespan>(std::chrono::duration<double>(timeout_s));
    caf::delayed_anon_send(reply_stream_actor{self}, span, deadline_atom::value);
  }
  return {
    [self](reply_atom, envelope& env) {
      auto& st = self->state;
      auto i = st.outstanding.find(env.reply_to);
      if (!st.sink || i == st.outstanding.end()) return;  // late, or a second copy
      st.outstanding.erase(i);
      auto msg = decode(env.bytes, env.content, st.codec);
      if (msg)
        st.sink->on_reply(*msg);
      else
        st.sink->on_reply(make_error_reply_to(
            env.reply_to, env.node_id,
            {error_code::unknown, "malformed reply: " + msg.error().to_string()}));
      if (st.outstanding.empty()) close_open(self);
    },
    [](await_atom) -> caf::result<std::vector<std::string>> { return std::vector<std::string>{}; },
    [self](deadline_atom) { close_open(self); },
  };
}

}  // namespace stamen
