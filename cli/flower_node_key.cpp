#include "cli/flower_node_key.hpp"

#include <grpcpp/client_context.h>
#include <openssl/ec.h>
#include <openssl/pem.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace stamen {

namespace {

constexpr const char* public_key_header = "flwr-public-key-bin";
constexpr const char* timestamp_header = "flwr-timestamp";
constexpr const char* signature_header = "flwr-signature-bin";

// Python's datetime.now(timezone.utc).isoformat(), as Flower's node sends it.
std::string iso_now() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (micros != 0) {
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(micros));
    out += frac;
  }
  return out + "+00:00";
}

}  // namespace

expected<flower_node_key> flower_node_key::make(const std::string& pem_file) {
  flower_node_key k;
  if (pem_file.empty()) {
    k.key_.reset(EVP_EC_gen("P-384"));
    if (!k.key_) return failure{errc::runtime_error, "cannot generate a SECP384R1 key"};
  } else {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(pem_file.c_str(), "r"), &std::fclose);
    if (!f) return failure{errc::io_error, "cannot read the node key " + pem_file};
    k.key_.reset(PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr));
    if (!k.key_ || EVP_PKEY_get_base_id(k.key_.get()) != EVP_PKEY_EC)
      return failure{errc::invalid_argument, pem_file + " is not a PEM EC private key"};
  }
  std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!PEM_write_bio_PUBKEY(bio.get(), k.key_.get()))
    return failure{errc::runtime_error, "cannot encode the node's public key"};
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  k.public_pem_.assign(data, static_cast<size_t>(n));
  return k;
}

std::string flower_node_key::sign(const std::string& text) const {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  size_t n = 0;
  auto in = reinterpret_cast<const unsigned char*>(text.data());
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &n, in, text.size()) != 1)
    return {};
  std::string sig(n, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n, in, text.size()) != 1) return {};
  sig.resize(n);
  return sig;
}

void flower_node_key::sign_call(grpc::ClientContext& ctx, double deadline_s) const {
  auto ts = iso_now();
  ctx.AddMetadata(public_key_header, public_pem_);
  ctx.AddMetadata(timestamp_header, ts);
  ctx.AddMetadata(signature_header, sign(ts));
  if (deadline_s > 0)
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(deadline_s * 1000)));
}

}  // namespace stamen
