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
  uint64_t expected = 0;       ///< instructions in the batch
  /// Ids of the instructions answered so far: moved from their replies, so
  /// that a round costs no per-reply hashing here (the grid already routes
  /// only this batch's replies, and tells a second one apart).
  std::vector<std::string> answered;
  bool done = false;
  std::optional<caf::typed_response_promise<uint64_t, std::vector<std::string>>> promise;
  codec_options codec;
};

/// The strategy's side of a round: decodes each reply as it arrives and hands
/// it to `sink` (FedAvg folds it there and lets it go). Done when each of the
/// `expected` instructions got a reply or `timeout` passed; `await` then
/// answers with the count that got one and, when some got none, their ids
/// (the caller knows which were sent); the sink is never called again.
reply_stream_actor::behavior_type reply_stream_behavior(
    reply_stream_actor::stateful_pointer<reply_stream_state> self, reply_sink* sink,
    uint64_t expected, caf::timespan timeout, codec_options codec);

struct open_reply_stream_state {
  static inline const char* name = "stamen.open_reply_stream";
  std::shared_ptr<reply_sink> sink;
  std::unordered_map<std::string, uint64_t> outstanding;  ///< id to node
  uint64_t remembered = 0;  ///< instructions of the batch the stream has not forgotten yet
  double timeout_s = 0;
  codec_options codec;
};

/// One send() of an instruction_stream: hands each reply to `sink` as it
/// arrives and, once the timeout passed, an error reply (reply_unavailable)
/// for each instruction still without one. A second copy of a reply (which
/// the grid marks as a duplicate) is handed on as well, until the stream has
/// forgotten every instruction of the batch (`cancel`, one count each); then
/// it is gone. `await` is answered at once (nobody waits on it).
reply_stream_actor::behavior_type open_reply_stream_behavior(
    reply_stream_actor::stateful_pointer<open_reply_stream_state> self,
    std::shared_ptr<reply_sink> sink, std::vector<std::pair<std::string, uint64_t>> ids,
    double timeout_s, codec_options codec);

}  // namespace stamen
