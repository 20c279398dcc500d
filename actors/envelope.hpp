#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/deserializer.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/serializer.hpp>

#include "messages/buffer.hpp"

namespace stamen {

/// Seconds on this process's monotonic clock: what an envelope's deadline
/// counts in. Never another host's clock, and never a wall clock that can
/// jump (NTP, an operator, faketime): a deadline crosses the wire as the
/// time it has left (see wire::outbox::push_envelope) and is set against
/// this clock on arrival.
inline double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// An envelope's deadline once it has passed (a positive value no clock
/// reads): an instruction that arrives with no time left.
inline constexpr double deadline_passed = 1e-300;

/// An encoded message with the few fields needed to route it, so that the
/// grid never decodes what it forwards. The bytes are shared, never copied,
/// between actors of one process.
struct envelope {
  std::string message_id;  ///< this message's id
  std::string reply_to;    ///< for a reply: the instruction's id
  uint64_t node_id = 0;    ///< destination of an instruction, source of a reply
  /// For an instruction: when its reply stops mattering, on steady_seconds()'s
  /// clock (its message's ttl from when it was sent); 0: none.
  double deadline = 0;
  buffer bytes;            ///< the encoded message, or its header (see encode_header)
  buffer content;          ///< the encoded content when it travels apart; shared by a round's instructions
  /// An envelope on its way to a socket may carry its message or content as
  /// parts never joined (encode_parts, encode_content_parts) instead of
  /// `bytes` or `content`, which are then empty: the frame is written from
  /// the parts, and the model's arrays are not copied into an encoding
  /// first. Only a supernode process's replies (to node_link) and a
  /// superlink's instructions (to its nodes' connections) come this way;
  /// nothing that decodes an envelope gets one.
  std::vector<buffer> bytes_parts = {};
  std::vector<buffer> content_parts = {};

  /// Bytes of the encoded message and of its content, whichever way held.
  size_t bytes_size() const { return bytes.size() + size_of(bytes_parts); }
  size_t content_size() const { return content.size() + size_of(content_parts); }

  static size_t size_of(const std::vector<buffer>& parts) {
    size_t n = 0;
    for (auto& p : parts) n += p.size();
    return n;
  }
};

/// CAF 0.17 inspection: the two byte blocks are written raw.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, envelope& x) {
  if constexpr (std::is_base_of_v<caf::serializer, Inspector>) {
    uint64_t n = x.bytes_size(), m = x.content_size();
    if (auto err = f(caf::meta::type_name("envelope"), x.message_id, x.reply_to, x.node_id,
                     x.deadline, n, m))
      return err;
    auto raw = [&f](const buffer& b) {
      return b.empty() ? caf::error{} : f.apply_raw(b.size(), const_cast<std::byte*>(b.data()));
    };
    if (auto err = raw(x.bytes)) return err;
    for (auto& p : x.bytes_parts)
      if (auto err = raw(p)) return err;
    if (auto err = raw(x.content)) return err;
    for (auto& p : x.content_parts)
      if (auto err = raw(p)) return err;
    return caf::error{};
  } else if constexpr (std::is_base_of_v<caf::deserializer, Inspector>) {
    uint64_t n = 0, m = 0;
    if (auto err = f(caf::meta::type_name("envelope"), x.message_id, x.reply_to, x.node_id,
                     x.deadline, n, m))
      return err;
    auto [bytes, out] = buffer::allocate(static_cast<size_t>(n));
    x.bytes = bytes;
    if (n > 0)
      if (auto err = f.apply_raw(n, out)) return err;
    auto [content, out2] = buffer::allocate(static_cast<size_t>(m));
    x.content = m == 0 ? buffer{} : content;
    return m == 0 ? caf::error{} : f.apply_raw(m, out2);
  } else {
    uint64_t n = x.bytes_size(), m = x.content_size();
    return f(caf::meta::type_name("envelope"), x.message_id, x.reply_to, x.node_id, n, m);
  }
}

}  // namespace stamen
