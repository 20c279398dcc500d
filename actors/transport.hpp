#pragma once

// Where a cluster link's bytes go: a plain TCP socket or a TLS session on
// one, both as CAF scribes, so that the brokers above never know which.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <caf/actor_system_config.hpp>
#include <caf/io/abstract_broker.hpp>
#include <caf/io/system_messages.hpp>

#include "actors/link_options.hpp"
#include "actors/wire_frame.hpp"
#include "messages/expected.hpp"

namespace stamen {

/// Checks TLS files before anything starts: each must exist and parse, and
/// the key must match the certificate. A TLS endpoint with a missing or
/// unreadable file refuses to start instead of falling back to encrypting
/// without authenticating anyone.
expected<void> check_tls_files(const tls_files& files);

/// Prepares a CAF config for cluster links: loads the middleman and, with
/// `tls`, records these files for the links' TLS sessions (transport.cpp),
/// every one of which verifies its peer's certificate against the CA (both
/// directions, TLS 1.3).
void configure_links(caf::actor_system_config& cfg, const std::optional<tls_files>& tls);

/// Opens a listening socket on `port` (0: any) for `self`; returns the port.
expected<uint16_t> listen_on(caf::io::abstract_broker* self, uint16_t port,
                             const std::string& bind, bool tls);

/// Connects `self` to host:port. With `tls`, the handshake completes in the
/// background; a peer that fails it (a certificate its CA did not sign, or
/// one that does not name `peer_name`, by default `host`, as a DNS or IP
/// subject alternative name) shows up as a closed connection.
expected<caf::io::connection_handle> connect_to(caf::io::abstract_broker* self,
                                                const std::string& host, uint16_t port, bool tls,
                                                const std::string& peer_name = {});

/// 32 bytes that only the two ends of this TLS connection can compute (the
/// TLS exporter, RFC 8446 section 7.5): what a peer signs besides the nonce,
/// so that a proof made for one connection is refused on another. Fails for a
/// plaintext connection or before the handshake has finished.
expected<std::string> channel_binding(caf::io::connection_handle hdl);

/// The TLS peer's certificate (PEM), as its handshake verified it.
expected<std::string> peer_certificate(caf::io::connection_handle hdl);

/// A connection's incoming side: feeds the bytes CAF read to `frames` and
/// asks CAF for exactly the next piece. Returns the frame just completed, if
/// any; a failure (a bad header) leaves the stream unusable.
expected<std::optional<wire::frame>> read_frame(caf::io::abstract_broker* self,
                                                caf::io::new_data_msg& m,
                                                wire::frame_assembler& frames);

/// A connection's outgoing side: frames wait in `out` and move into CAF's
/// socket buffer as it drains, a few MiB at a time (see wire::outbox). Turn on
/// write acknowledgements for the connection (ack_writes) and call pump on
/// each data_transferred_msg, and after queueing.
struct link_writer {
  wire::outbox out;
  uint64_t in_flight = 0;  ///< bytes handed to CAF and not yet written
};

/// Moves queued bytes into the socket's buffer while less than a few MiB are
/// in flight, and flushes.
void pump(caf::io::abstract_broker* self, caf::io::connection_handle hdl, link_writer& w);

/// `s` seconds as a duration for CAF's timers.
std::chrono::nanoseconds seconds_ns(double s);

/// "2.00s", for log lines.
std::string format_seconds(double s);

/// Splits "host:port"; fails with a message naming `what` otherwise.
expected<std::pair<std::string, uint16_t>> parse_address(const std::string& address,
                                                         const std::string& what);

}  // namespace stamen
