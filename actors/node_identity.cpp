#include "actors/node_identity.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <sstream>

#include "actors/transport.hpp"
#include "messages/message.hpp"

namespace stamen {

namespace {

template <class T, void (*F)(T*)>
struct deleter {
  void operator()(T* p) const { F(p); }
};
using bio_ptr = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509, X509_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using store_ptr = std::unique_ptr<X509_STORE, deleter<X509_STORE, X509_STORE_free>>;
using store_ctx_ptr = std::unique_ptr<X509_STORE_CTX, deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;

std::string ssl_error() {
  auto code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no detail from OpenSSL";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

expected<std::string> read_file(const std::string& path, const char* what) {
  std::ifstream in{path, std::ios::binary};
  if (!in) return fail(errc::io_error, std::string{"cannot read "} + what + " '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

x509_ptr parse_cert(const std::string& pem) {
  bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
  return x509_ptr{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)};
}

// Ed25519 signs the message itself; RSA and EC keys sign its SHA-256.
const EVP_MD* digest_for(EVP_PKEY* key) {
  return EVP_PKEY_id(key) == EVP_PKEY_ED25519 || EVP_PKEY_id(key) == EVP_PKEY_ED448 ? nullptr
                                                                                    : EVP_sha256();
}

expected<std::string> fingerprint_of(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return fail(errc::runtime_error, "cannot encode a public key: " + ssl_error());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_Digest(der, static_cast<size_t>(n), md, &md_len, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < md_len; ++i) {
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  return hex;
}

}  // namespace

expected<node_proof> prove_identity(const tls_files& files, const std::string& nonce) {
  struct clear_on_exit {
    ~clear_on_exit() { ERR_clear_error(); }
  } clear;
  auto cert = read_file(files.certificate, "certificate");
  if (!cert) return cert.error();
  auto key_pem = read_file(files.key, "private key");
  if (!key_pem) return key_pem.error();
  bio_ptr bio{BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size()))};
  pkey_ptr key{PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)};
  if (!key) return fail(errc::config_error, "cannot parse private key '" + files.key + "': " + ssl_error());
  md_ctx_ptr md{EVP_MD_CTX_new()};
  size_t len = 0;
  if (EVP_DigestSignInit(md.get(), nullptr, digest_for(key.get()), nullptr, key.get()) != 1 ||
      EVP_DigestSign(md.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(nonce.data()), nonce.size()) != 1)
    return fail(errc::runtime_error, "cannot sign with '" + files.key + "': " + ssl_error());
  std::string sig(len, '\0');
  if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(nonce.data()), nonce.size()) != 1)
    return fail(errc::runtime_error, "cannot sign with '" + files.key + "': " + ssl_error());
  sig.resize(len);
  return node_proof{std::move(*cert), std::move(sig)};
}

expected<node_identity> authenticate_peer(const std::string& certificate_pem,
                                          const std::string& signature, const std::string& nonce,
                                          const link_options& opts,
                                          const std::vector<std::string>& allowed, const std::string& who) {
  // Runs on the broker's thread, beside its TLS sessions: leave OpenSSL's
  // per-thread error queue as empty as it was found.
  struct clear_on_exit {
    ~clear_on_exit() { ERR_clear_error(); }
  } clear;
  if (certificate_pem.empty())
    return fail(errc::invalid_argument, who + " sent no certificate, and this superlink authenticates " + who + "s");
  auto cert = parse_cert(certificate_pem);
  if (!cert) return fail(errc::invalid_argument, who + "'s certificate does not parse: " + ssl_error());
  if (opts.tls) {
    store_ptr store{X509_STORE_new()};
    if (X509_STORE_load_locations(store.get(), opts.tls->ca.c_str(), nullptr) != 1)
      return fail(errc::config_error, "cannot load CA '" + opts.tls->ca + "': " + ssl_error());
    store_ctx_ptr ctx{X509_STORE_CTX_new()};
    X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
    if (X509_verify_cert(ctx.get()) != 1)
      return fail(errc::invalid_argument,
                  who + "'s certificate is not signed by this superlink's CA: " +
                      X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  }
  pkey_ptr key{X509_get_pubkey(cert.get())};
  if (!key) return fail(errc::invalid_argument, who + "'s certificate has no usable key");
  md_ctx_ptr md{EVP_MD_CTX_new()};
  if (EVP_DigestVerifyInit(md.get(), nullptr, digest_for(key.get()), nullptr, key.get()) != 1 ||
      EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(nonce.data()),
                       nonce.size()) != 1) {
    ERR_clear_error();
    return fail(errc::invalid_argument,
                who + "'s signature does not match its certificate (it does not hold the key)");
  }
  auto fp = fingerprint_of(key.get());
  if (!fp) return fp.error();
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), *fp) == allowed.end())
    return fail(errc::invalid_argument, who + " key " + *fp + " is not in the allow-list");
  uint64_t id = 0;
  for (int i = 0; i < 8; ++i) id = (id << 8) | std::stoul(fp->substr(2 * i, 2), nullptr, 16);
  id >>= 1;  // node ids are 63-bit, as in Flower
  if (id == 0 || id == server_node_id) id = 2;
  return node_identity{*fp, id};
}

expected<node_identity> authenticate_node(const std::string& certificate_pem,
                                          const std::string& signature, const std::string& nonce,
                                          const link_options& opts) {
  return authenticate_peer(certificate_pem, signature, nonce, opts, opts.allowed_nodes, "node");
}

namespace {

// A label, then each part after its length (32 bits, little-endian): no
// other parts give the same bytes, and no statement under one label passes
// for one under another.
std::string labelled(const char* label, std::initializer_list<const std::string*> parts) {
  std::string out = label;
  for (auto* part : parts) {
    auto n = static_cast<uint32_t>(part->size());
    for (int i = 0; i < 4; ++i) out += static_cast<char>(n >> (8 * i));
    out += *part;
  }
  return out;
}

}  // namespace

std::string challenge_to_sign(const std::string& nonce, const std::string& binding) {
  return labelled("stamen peer proof v1", {&nonce, &binding});
}

std::string bundle_statement(const std::string& hash, const std::string& library) {
  return labelled("stamen bundle signature v1", {&hash, &library});
}

expected<node_identity> verify_bundle_signature(const std::string& certificate_pem,
                                                const std::string& signature, const std::string& hash,
                                                const std::string& library, const link_options& opts,
                                                const std::vector<std::string>& allowed, const std::string& who) {
  return authenticate_peer(certificate_pem, signature, bundle_statement(hash, library), opts, allowed, who);
}

expected<node_proof> answer_challenge(const link_options& link, caf::io::connection_handle hdl,
                                      const std::string& nonce) {
  if (!link.tls) return fail(errc::invalid_argument, "no TLS files to prove an identity with");
  if (!link.superlink_key.empty()) {
    auto pem = peer_certificate(hdl);
    auto fp = pem ? certificate_fingerprint(*pem) : expected<std::string>{pem.error()};
    if (!fp) return fail(errc::invalid_argument, "cannot check the superlink's key: " + fp.error().what);
    if (*fp != link.superlink_key)
      return fail(errc::invalid_argument, "the superlink's key " + *fp + " is not the pinned " +
                                              link.superlink_key);
  }
  auto binding = channel_binding(hdl);
  if (!binding) return binding.error();
  return prove_identity(*link.tls, challenge_to_sign(nonce, *binding));
}

expected<std::string> random_nonce(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    return fail(errc::runtime_error, "OpenSSL's random generator failed: " + ssl_error());
  return out;
}

expected<uint64_t> random_u64() {
  auto bytes = random_nonce(8);
  if (!bytes) return bytes.error();
  uint64_t x = 0;
  for (auto c : *bytes) x = (x << 8) | static_cast<unsigned char>(c);
  return x;
}

expected<std::string> certificate_fingerprint(const std::string& certificate_pem) {
  auto cert = parse_cert(certificate_pem);
  pkey_ptr key{cert ? X509_get_pubkey(cert.get()) : nullptr};
  if (!key) {
    auto why = ssl_error();
    return fail(errc::invalid_argument, "a certificate without a usable key: " + why);
  }
  return fingerprint_of(key.get());
}

expected<std::string> resolve_key(const std::string& fingerprint_or_pem_file) {
  auto& k = fingerprint_or_pem_file;
  if (k.size() == 64 && k.find_first_not_of("0123456789abcdef") == std::string::npos) return k;
  return key_fingerprint(k);
}

expected<std::string> key_fingerprint(const std::string& pem_file) {
  auto pem = read_file(pem_file, "certificate or public key");
  if (!pem) return pem.error();
  if (auto fp = certificate_fingerprint(*pem)) return fp;
  bio_ptr bio{BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()))};
  pkey_ptr key{PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)};
  if (!key)
    return fail(errc::config_error, "'" + pem_file + "' holds no certificate or public key: " + ssl_error());
  return fingerprint_of(key.get());
}

}  // namespace stamen
