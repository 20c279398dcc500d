#include "runtime/secagg/secagg_crypto.hpp"

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <cstring>
#include <memory>
#include <string>

namespace stamen::secagg {

namespace {

constexpr size_t nonce_len = 12, tag_len = 16;

failure ssl_failed(const char* what) {
  return fail(errc::runtime_error, std::string("secagg+: OpenSSL ") + what + " failed");
}

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct pkey_ctx_free {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct cipher_ctx_free {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_free>;
using cipher_ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free>;

}  // namespace

expected<key_pair> generate_key_pair() {
  pkey_ctx_ptr ctx{EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr)};
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1)
    return ssl_failed("X25519 key generation");
  pkey_ptr key{raw};
  key_pair out{bytes(32), bytes(32)};
  size_t n = 32;
  if (EVP_PKEY_get_raw_private_key(key.get(), out.private_key.data(), &n) != 1 || n != 32)
    return ssl_failed("X25519 private key export");
  n = 32;
  if (EVP_PKEY_get_raw_public_key(key.get(), out.public_key.data(), &n) != 1 || n != 32)
    return ssl_failed("X25519 public key export");
  return out;
}

expected<bytes> public_key_of(const bytes& private_key) {
  if (private_key.size() != 32)
    return fail(errc::invalid_argument, "secagg+: an X25519 private key has 32 bytes, not " +
                                            std::to_string(private_key.size()));
  pkey_ptr key{EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(), 32)};
  bytes out(32);
  size_t n = 32;
  if (!key || EVP_PKEY_get_raw_public_key(key.get(), out.data(), &n) != 1 || n != 32)
    return ssl_failed("X25519 public key export");
  return out;
}

expected<bytes> random_bytes(size_t n) {
  bytes out(n);
  if (n && RAND_bytes(out.data(), static_cast<int>(n)) != 1) return ssl_failed("RAND_bytes");
  return out;
}

expected<key_agreement> key_agreement::make(const bytes& private_key) {
  if (private_key.size() != 32)
    return fail(errc::invalid_argument, "secagg+: an X25519 private key has 32 bytes, not " +
                                            std::to_string(private_key.size()));
  auto* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(), 32);
  if (!key) return fail(errc::invalid_argument, "secagg+: not an X25519 private key");
  return key_agreement{key};
}

key_agreement::key_agreement(key_agreement&& o) noexcept : key_(o.key_) { o.key_ = nullptr; }

key_agreement& key_agreement::operator=(key_agreement&& o) noexcept {
  if (this != &o) {
    EVP_PKEY_free(static_cast<EVP_PKEY*>(key_));
    key_ = o.key_;
    o.key_ = nullptr;
  }
  return *this;
}

key_agreement::~key_agreement() { EVP_PKEY_free(static_cast<EVP_PKEY*>(key_)); }

expected<key32> key_agreement::with(const bytes& public_key, std::string_view label) const {
  if (public_key.size() != 32)
    return fail(errc::invalid_argument, "secagg+: an X25519 public key has 32 bytes, not " +
                                            std::to_string(public_key.size()));
  pkey_ptr pub{EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, public_key.data(), 32)};
  if (!pub) return fail(errc::invalid_argument, "secagg+: not an X25519 key");
  pkey_ctx_ptr ctx{EVP_PKEY_CTX_new(static_cast<EVP_PKEY*>(key_), nullptr)};
  uint8_t shared[32];
  size_t n = sizeof shared;
  // OpenSSL refuses a low-order peer key (all-zero shared secret) in derive.
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), pub.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), shared, &n) != 1 || n != 32)
    return fail(errc::invalid_argument, "secagg+: X25519 agreement refused the peer's key");
  key32 out{};
  pkey_ctx_ptr kdf{EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr)};
  bool ok = kdf && EVP_PKEY_derive_init(kdf.get()) == 1 &&
            EVP_PKEY_CTX_set_hkdf_md(kdf.get(), EVP_sha256()) == 1 &&
            EVP_PKEY_CTX_set1_hkdf_key(kdf.get(), shared, 32) == 1 &&
            EVP_PKEY_CTX_add1_hkdf_info(kdf.get(),
                                        reinterpret_cast<const unsigned char*>(label.data()),
                                        static_cast<int>(label.size())) == 1;
  size_t out_len = out.size();
  ok = ok && EVP_PKEY_derive(kdf.get(), out.data(), &out_len) == 1 && out_len == out.size();
  OPENSSL_cleanse(shared, sizeof shared);
  if (!ok) return ssl_failed("HKDF-SHA256");
  return out;
}

expected<key32> agree(const bytes& private_key, const bytes& public_key, std::string_view label) {
  if (private_key.size() != 32 || public_key.size() != 32)
    return fail(errc::invalid_argument, "secagg+: an X25519 key has 32 bytes, got " +
                                            std::to_string(private_key.size()) + " and " +
                                            std::to_string(public_key.size()));
  auto k = key_agreement::make(private_key);
  if (!k) return k.error();
  return k->with(public_key, label);
}

expected<bytes> seal(const key32& key, const bytes& plaintext, const bytes& aad) {
  bytes out(nonce_len + plaintext.size() + tag_len);
  if (RAND_bytes(out.data(), nonce_len) != 1) return ssl_failed("RAND_bytes");
  cipher_ctx_ptr ctx{EVP_CIPHER_CTX_new()};
  int len = 0;
  bool ok = ctx &&
            EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), out.data()) == 1 &&
            (aad.empty() || EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(),
                                              static_cast<int>(aad.size())) == 1) &&
            (plaintext.empty() ||
             EVP_EncryptUpdate(ctx.get(), out.data() + nonce_len, &len, plaintext.data(),
                               static_cast<int>(plaintext.size())) == 1) &&
            EVP_EncryptFinal_ex(ctx.get(), out.data() + nonce_len + plaintext.size(), &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_len,
                                out.data() + nonce_len + plaintext.size()) == 1;
  if (!ok) return ssl_failed("AES-256-GCM encryption");
  return out;
}

expected<bytes> open(const key32& key, const bytes& sealed, const bytes& aad) {
  if (sealed.size() < nonce_len + tag_len)
    return fail(errc::invalid_message, "secagg+: a sealed share has " +
                                           std::to_string(sealed.size()) +
                                           " bytes, fewer than a nonce and a tag");
  size_t n = sealed.size() - nonce_len - tag_len;
  bytes out(n);
  cipher_ctx_ptr ctx{EVP_CIPHER_CTX_new()};
  int len = 0;
  bool set = ctx &&
             EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), sealed.data()) == 1 &&
             (aad.empty() || EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(),
                                               static_cast<int>(aad.size())) == 1) &&
             (n == 0 || EVP_DecryptUpdate(ctx.get(), out.data(), &len, sealed.data() + nonce_len,
                                          static_cast<int>(n)) == 1) &&
             EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_len,
                                 const_cast<uint8_t*>(sealed.data() + nonce_len + n)) == 1;
  if (!set) return ssl_failed("AES-256-GCM decryption");
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + n, &len) != 1)
    return fail(errc::invalid_message,
                "secagg+: a share failed authentication (altered, or sealed for another pair, "
                "round or direction)");
  return out;
}

expected<mask_stream> mask_stream::make(const key32& seed) {
  auto* ctx = EVP_CIPHER_CTX_new();
  uint8_t iv[16] = {};
  if (!ctx || EVP_EncryptInit_ex(ctx, EVP_chacha20(), nullptr, seed.data(), iv) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return ssl_failed("ChaCha20 setup");
  }
  return mask_stream{ctx};
}

mask_stream::mask_stream(mask_stream&& o) noexcept : ctx_(o.ctx_) { o.ctx_ = nullptr; }

mask_stream& mask_stream::operator=(mask_stream&& o) noexcept {
  if (this != &o) {
    EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(ctx_));
    ctx_ = o.ctx_;
    o.ctx_ = nullptr;
  }
  return *this;
}

mask_stream::~mask_stream() { EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(ctx_)); }

void mask_stream::fill(uint8_t* out, size_t n) {
  // The keystream is the encryption of zeros; encrypting in place saves a buffer.
  std::memset(out, 0, n);
  auto* ctx = static_cast<EVP_CIPHER_CTX*>(ctx_);
  constexpr size_t step = size_t{1} << 30;
  for (size_t done = 0; done < n; done += step) {
    int len = 0;
    int chunk = static_cast<int>(std::min(step, n - done));
    EVP_EncryptUpdate(ctx, out + done, &len, out + done, chunk);  // ChaCha20 cannot fail here
  }
}

void mask_stream::next32(uint32_t* out, size_t n, int bits) {
  fill(reinterpret_cast<uint8_t*>(out), n * sizeof(uint32_t));
  uint32_t m = bits >= 32 ? ~uint32_t{0} : (uint32_t{1} << bits) - 1;
  for (size_t i = 0; i < n; ++i) out[i] &= m;  // little-endian hosts only (x86-64, aarch64)
}

void mask_stream::next64(uint64_t* out, size_t n, int bits) {
  fill(reinterpret_cast<uint8_t*>(out), n * sizeof(uint64_t));
  uint64_t m = bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  for (size_t i = 0; i < n; ++i) out[i] &= m;
}

}  // namespace stamen::secagg
