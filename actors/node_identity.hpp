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

}  // namespace stamen
