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

}  // namespace stamen
