#pragma once

// A Flower SuperNode's identity: its EC key and the signature Flower's
// SuperLink checks on every Fleet call (the public key as PEM
// SubjectPublicKeyInfo, an ISO-8601 UTC timestamp, and an ECDSA-SHA256
// signature of that timestamp, in three metadata headers).

#include <memory>
#include <string>

#include <openssl/evp.h>

#include "messages/expected.hpp"

namespace grpc {
class ClientContext;
}

namespace stamen {

class flower_node_key {
 public:
  /// Reads a PEM EC private key (PKCS#8 or SEC1) from `pem_file`, or makes
  /// a fresh SECP384R1 key, as flower-supernode does, when it is empty.
  static expected<flower_node_key> make(const std::string& pem_file);

  /// The public key as PEM SubjectPublicKeyInfo (what RegisterNode carries).
  const std::string& public_pem() const { return public_pem_; }

  /// ECDSA-SHA256 of `text`, DER-encoded; empty if OpenSSL fails.
  std::string sign(const std::string& text) const;

  /// Adds the three authentication headers to `ctx`, and a deadline
  /// `deadline_s` from now when it is positive.
  void sign_call(grpc::ClientContext& ctx, double deadline_s = 0) const;

 private:
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key_{nullptr, &EVP_PKEY_free};
  std::string public_pem_;
};

}  // namespace stamen
