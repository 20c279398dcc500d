#pragma once

#include <memory>
#include <optional>
#include <unordered_map>
#include <string>
#include <unordered_set>
#include <vector>

#include <caf/typed_response_promise.hpp>

#include "actors/interfaces.hpp"
#include "messages/codec.hpp"
#include "runtime/grid.hpp"

namespace stamen {

struct reply_stream_state {
  static inline const char* name = "stamen.reply_stream";
  reply_sink* sink = nullptr;  ///< owned by the caller, who waits on await
  std::unordered_set<std::string> outstanding;
  std::optional<std::vector<std::string>> result;
  std::optional<caf::typed_response_promise<std::vector<std::string>>> promise;
  codec_options codec;
};

/// The strategy's side of a round: decodes each reply as it arrives and hands
/// it to `sink` (FedAvg folds it there and lets it go). Done when every id in
/// `ids` got a reply or `timeout` passed; `await` then answers with the ids
/// that got none, and the sink is never called again.
reply_stream_actor::behavior_type reply_stream_behavior(
    reply_stream_actor::stateful_pointer<reply_stream_state> self, reply_sink* sink,
    std::vector<std::string> ids, caf::timespan timeout, codec_options codec);

struct open_reply_stream_state {
  static inline const char* name = "stamen.open_reply_stream";
  std::shared_ptr<reply_sink> sink;
  std::unordered_map<std::string, uint64_t> outstanding;  ///< id to node
  double timeout_s = 0;
  codec_options codec;
};

/// One send() of an instruction_stream: hands each reply to `sink` as it
/// arrives and, once the timeout passed, an error reply (reply_unavailable)
/// for each instruction still without one; then it is gone. `await` is
/// answered at once (nobody waits on it).
reply_stream_actor::behavior_type open_reply_stream_behavior(
    reply_stream_actor::stateful_pointer<open_reply_stream_state> self,
    std::shared_ptr<reply_sink> sink, std::vector<std::pair<std::string, uint64_t>> ids,
    double timeout_s, codec_options codec);

}  // namespace stamen
