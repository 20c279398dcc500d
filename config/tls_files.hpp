#pragma once

#include <string>

namespace stamen {

/// The PEM files of a TLS endpoint. Both sides present a certificate signed
/// by `ca` and verify the peer's against it (mutual authentication).
struct tls_files {
  std::string ca;           ///< CA certificate(s) that sign every peer
  std::string certificate;  ///< this endpoint's certificate chain
  std::string key;          ///< this endpoint's private key
};

}  // namespace stamen
