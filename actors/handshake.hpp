#pragma once

// The first two frames of a cluster link, written and read in one place:
// the superlink's challenge to whoever connects, and a node's hello.

#include <cstdint>
#include <string>
#include <vector>

#include "messages/buffer.hpp"
#include "messages/expected.hpp"

namespace stamen::wire {

/// L→N/C on connect: a nonce for the node to sign, and the superlink's
/// heartbeat settings, which both ends of the link then follow.
struct challenge {
  std::string nonce;
  double heartbeat_s = 0.5;
  double timeout_s = 2.0;
  bool tls = false;
};

std::vector<std::byte> write_challenge(const challenge& c);
/// Reads a challenge. The settings are kept sane whatever the peer sent: a
/// heartbeat of at least 10 ms, a timeout of at least two heartbeats.
expected<challenge> read_challenge(const buffer& payload);

/// N→L: the id the node claims (0: any), its node config for the log, and
/// with TLS its certificate and its signature of the challenge's nonce.
/// A process that hosts several SuperNodes behind one link says how many:
/// they get the ids node_id .. node_id + nodes - 1, claimed and granted as
/// one block (so a reconnection claims a million nodes in one frame).
struct hello {
  uint64_t node_id = 0;
  std::string node_config;
  std::string certificate;
  std::string signature;
  uint32_t nodes = 1;
};

/// The most SuperNodes one link may carry.
inline constexpr uint32_t max_nodes_per_link = 1u << 22;

std::vector<std::byte> write_hello(const hello& h);
/// Reads a hello; fails on a field over its limit or trailing bytes.
expected<hello> read_hello(const buffer& payload);

}  // namespace stamen::wire
