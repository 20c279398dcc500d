#include "actors/handshake.hpp"

#include <algorithm>

#include "actors/wire_frame.hpp"

namespace stamen::wire {

std::vector<std::byte> write_challenge(const challenge& c) {
  writer w;
  w.str(c.nonce);
  w.f64(c.heartbeat_s);
  w.f64(c.timeout_s);
  w.u8(c.tls ? 1 : 0);
  return std::move(w.bytes());
}

expected<challenge> read_challenge(const buffer& payload) {
  reader r{payload};
  auto nonce = r.str("nonce", 1024);
  auto hb = nonce ? r.f64("heartbeat") : expected<double>{nonce.error()};
  auto to = hb ? r.f64("timeout") : expected<double>{hb.error()};
  auto tls = to ? r.u8("tls") : expected<uint8_t>{to.error()};
  if (!tls) return tls.error();
  if (auto ok = r.finish("challenge"); !ok) return ok.error();
  challenge c;
  c.nonce = std::move(*nonce);
  c.heartbeat_s = std::max(0.01, *hb);
  c.timeout_s = std::max(c.heartbeat_s * 2, *to);
  c.tls = *tls != 0;
  return c;
}

std::vector<std::byte> write_hello(const hello& h) {
  writer w;
  w.u64(h.node_id);
  w.str(h.node_config);
  w.str(h.certificate);
  w.str(h.signature);
  w.u64(h.nodes);
  return std::move(w.bytes());
}

expected<hello> read_hello(const buffer& payload) {
  reader r{payload};
  auto claim = r.u64("claimed node id");
  auto node_config = claim ? r.str("node config", 16 << 10) : expected<std::string>{claim.error()};
  auto cert = node_config ? r.str("certificate", 32 << 10) : expected<std::string>{node_config.error()};
  auto sig = cert ? r.str("signature", 4 << 10) : expected<std::string>{cert.error()};
  auto nodes = sig ? r.u64("node count") : expected<uint64_t>{sig.error()};
  if (!nodes) return nodes.error();
  if (auto ok = r.finish("hello"); !ok) return ok.error();
  if (*nodes == 0 || *nodes > max_nodes_per_link)
    return fail(errc::invalid_argument, "hello: node count " + std::to_string(*nodes) + " is not in 1.." +
                                            std::to_string(max_nodes_per_link));
  return hello{*claim, std::move(*node_config), std::move(*cert), std::move(*sig), static_cast<uint32_t>(*nodes)};
}

}  // namespace stamen::wire
