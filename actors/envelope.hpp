#pragma once

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

/// An encoded message with the few fields needed to route it, so that the
/// grid never decodes what it forwards. The bytes are shared, never copied,
/// between actors of one process.
struct envelope {
  std::string message_id;  ///< this message's id
  std::string reply_to;    ///< for a reply: the instruction's id
  uint64_t node_id = 0;    ///< destination of an instruction, source of a reply
  double deadline = 0;     ///< for an instruction: created_at + ttl (Unix seconds)
  buffer bytes;            ///< the encoded message, or its header (see encode_header)
  buffer content;          ///< the encoded content when it travels apart; shared by a round's instructions
  /// A reply on its way to the wire (node_link) may carry its encoding as
  /// parts never joined (encode_parts) instead of `bytes`, which is then
  /// empty: the frame is written from them, and the reply's arrays are not
  /// copied first. Nothing that reads `bytes` ever gets such an envelope.
  std::vector<buffer> bytes_parts = {};

  /// Bytes of the encoded message, whichever way it is held.
  size_t bytes_size() const {
    size_t n = bytes.size();
    for (auto& p : bytes_parts) n += p.size();
    return n;
  }
};

/// CAF 0.17 inspection: the two byte blocks are written raw.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, envelope& x) {
  if constexpr (std::is_base_of_v<caf::serializer, Inspector>) {
    uint64_t n = x.bytes_size(), m = x.content.size();
    if (auto err = f(caf::meta::type_name("envelope"), x.message_id, x.reply_to, x.node_id,
                     x.deadline, n, m))
      return err;
    if (x.bytes.size() > 0)
      if (auto err = f.apply_raw(x.bytes.size(), const_cast<std::byte*>(x.bytes.data()))) return err;
    for (auto& p : x.bytes_parts)
      if (p.size() > 0)
        if (auto err = f.apply_raw(p.size(), const_cast<std::byte*>(p.data()))) return err;
    return m == 0 ? caf::error{} : f.apply_raw(m, const_cast<std::byte*>(x.content.data()));
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
    uint64_t n = x.bytes_size(), m = x.content.size();
    return f(caf::meta::type_name("envelope"), x.message_id, x.reply_to, x.node_id, n, m);
  }
}

}  // namespace stamen
