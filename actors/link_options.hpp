#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/tls_files.hpp"

namespace stamen {

/// What both ends of a cluster link agree on (a superlink sends its heartbeat
/// settings to every node in its first frame).
struct link_options {
  /// Each side sends a ping when it has sent nothing for this long.
  double heartbeat_s = 0.5;
  /// A peer silent this long is dead: its connection is closed and, for a
  /// node, everything it owed is answered with node-unavailable errors.
  double timeout_s = 2.0;
  /// Largest frame accepted from an authenticated peer: a whole encoded
  /// message (codec_options' maximum) plus the envelope around it.
  uint64_t max_frame = (uint64_t{2} << 30) + (uint64_t{65} << 20);
  /// Largest frame accepted before a peer has said who it is.
  uint64_t max_handshake_frame = 64 << 10;
  /// Payloads are read in pieces of this size (see frame_assembler).
  size_t read_chunk = size_t{1} << 20;
  /// Set: TLS with mutual authentication; unset: plaintext.
  std::optional<tls_files> tls;
  /// Superlink only: SHA-256 fingerprints (hex) of the node keys allowed to
  /// register; empty: any node the CA vouches for (or any node without TLS).
  std::vector<std::string> allowed_nodes;
  /// Nodes and submitters: the name the superlink's certificate must carry
  /// as a DNS or IP subject alternative name; empty: the host they connect to.
  std::string superlink_name;
  /// Nodes and submitters: the SHA-256 fingerprint (hex) the superlink's key
  /// must have, checked besides its certificate; empty: any key of that name.
  std::string superlink_key;
};

}  // namespace stamen
