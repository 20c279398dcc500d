#pragma once

// Who a SuperNode is, proven rather than claimed: a node signs its
// connection's nonce with its private key and sends its certificate; the
// superlink checks the certificate against its CA, the signature against the
// certificate's key and, if it has one, the key against an allow-list (as in
// Flower's SuperNode authentication). The node id derives from the key, so a
// node cannot take another's id and a restarted node gets its own back.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/io/connection_handle.hpp>

#include "actors/link_options.hpp"
#include "messages/expected.hpp"

namespace stamen {

struct node_identity {
  std::string fingerprint;  ///< SHA-256 of the public key (DER), lowercase hex
  uint64_t node_id = 0;     ///< from the fingerprint; never 0 or the server's id
};

/// A node's proof for `nonce`: its certificate (PEM) and the signature of
/// the nonce with the key in `files.key`.
struct node_proof {
  std::string certificate;
  std::string signature;
};
expected<node_proof> prove_identity(const tls_files& files, const std::string& nonce);

/// What a peer signs for a connection: the superlink's nonce (fresh from
/// OpenSSL's CSPRNG for each connection) and the connection's channel
/// binding (transport's channel_binding), under a label of their own. A
/// proof is good for that one TLS connection: relayed to another or
/// replayed later, it is refused.
std::string challenge_to_sign(const std::string& nonce, const std::string& binding);

/// What a submitter signs for its bundle (with the key of its TLS files,
/// through prove_identity) and a node checks before loading it: the
/// bundle's hash and the library loaded from it, under a label of their own.
std::string bundle_statement(const std::string& hash, const std::string& library);

/// Checks a submitter's signature of a bundle (bundle_statement of `hash`
/// and `library`) as authenticate_peer checks a proof: the certificate
/// against `opts.tls->ca`, the signature against its key, the key against
/// `allowed` (empty: any the CA vouches for).
expected<node_identity> verify_bundle_signature(const std::string& certificate_pem,
                                                const std::string& signature, const std::string& hash,
                                                const std::string& library, const link_options& opts,
                                                const std::vector<std::string>& allowed, const std::string& who);

/// What a node or submitter answers to a superlink's challenge on TLS
/// connection `hdl`: first the superlink's key is checked against
/// `link.superlink_key` if one is pinned (its name was checked by the
/// handshake), then the proof signs challenge_to_sign(nonce, the
/// connection's channel binding) with `link.tls->key`.
expected<node_proof> answer_challenge(const link_options& link, caf::io::connection_handle hdl,
                                      const std::string& nonce);

/// A fresh nonce of `n` bytes from OpenSSL's CSPRNG (RAND_bytes); fails only
/// when OpenSSL has no entropy to give.
expected<std::string> random_nonce(size_t n = 32);

/// A random 64-bit value from OpenSSL's CSPRNG (the ids of nodes without a
/// key): nothing about one id tells anything about another or about a nonce.
expected<uint64_t> random_u64();

/// Checks a proof (see above) against `opts.tls->ca` and `opts.allowed_nodes`.
expected<node_identity> authenticate_node(const std::string& certificate_pem,
                                          const std::string& signature, const std::string& nonce,
                                          const link_options& opts);

/// The same check for any peer (`who`, for error messages, e.g. "submitter")
/// against the fingerprints in `allowed` (empty: any key the CA vouches for).
expected<node_identity> authenticate_peer(const std::string& certificate_pem,
                                          const std::string& signature, const std::string& nonce,
                                          const link_options& opts,
                                          const std::vector<std::string>& allowed, const std::string& who);

/// The fingerprint of the public key in a PEM certificate or public key file
/// (what an allow-list holds).
expected<std::string> key_fingerprint(const std::string& pem_file);

/// A key as the command line and a federation give it: a SHA-256
/// fingerprint (64 lowercase hex digits) as it is, or a PEM file by its
/// key's fingerprint.
expected<std::string> resolve_key(const std::string& fingerprint_or_pem_file);

/// The same fingerprint of the key in a certificate given as PEM text.
expected<std::string> certificate_fingerprint(const std::string& certificate_pem);

}  // namespace stamen
