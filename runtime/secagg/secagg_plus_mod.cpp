#include "runtime/secagg/secagg_plus_mod.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "runtime/secagg/quantization.hpp"
#include "runtime/secagg/secagg_crypto.hpp"
#include "runtime/secagg/secagg_params.hpp"
#include "runtime/secagg/secagg_protocol.hpp"
#include "runtime/secagg/shamir.hpp"

namespace stamen {

using namespace secagg;

namespace {

// The node's protocol state, as it is kept in context.state between stages.
struct node_state {
  std::string stage;  // the last stage completed; empty before any
  int64_t round = 0;
  uint64_t nid = 0;
  int64_t threshold = 0;
  double clipping_range = 0, max_weight = 0;
  int64_t q_range = 0, mod_range = 0;
  bytes sk1, pk1, sk2, pk2, seed;
  std::vector<int64_t> neighbours;   // share-keys: the neighbours named, itself included
  std::vector<bytes> pk1s, pk2s;     // their public keys, in that order
  std::vector<int64_t> holders;      // collect: whose shares this node holds (itself included)
  std::vector<bytes> seed_shares, key_shares;  // in that order
  std::vector<int64_t> masked_with;  // collect: the pairwise masks it added
};

template <class T>
const T* field(const config_record& c, const char* key) {
  auto* v = c.get(key);
  return v ? std::get_if<T>(v) : nullptr;
}

template <class T>
expected<T> need(const config_record& c, const char* stage, const char* key) {
  if (auto* v = field<T>(c, key)) return *v;
  return fail(errc::invalid_message, std::string("secagg+: stage ") + stage + ": '" + key +
                                         "' is missing or of the wrong type");
}

node_state load(const context& ctx) {
  node_state s;
  auto* c = ctx.state.configs(record_key);
  if (!c) return s;
  auto get = [&](const char* k, auto& out) {
    using T = std::decay_t<decltype(out)>;
    if (auto* v = field<T>(*c, k)) out = *v;
  };
  get("stage", s.stage);
  get("round", s.round);
  int64_t nid = 0;
  get("nid", nid);
  s.nid = static_cast<uint64_t>(nid);
  get("threshold", s.threshold);
  get("clipping-range", s.clipping_range);
  get("max-weight", s.max_weight);
  get("quantization-range", s.q_range);
  get("modulus-range", s.mod_range);
  get("sk1", s.sk1), get("pk1", s.pk1), get("sk2", s.sk2), get("pk2", s.pk2), get("seed", s.seed);
  get("neighbours", s.neighbours), get("pk1s", s.pk1s), get("pk2s", s.pk2s);
  get("holders", s.holders), get("seed-shares", s.seed_shares), get("key-shares", s.key_shares);
  get("masked-with", s.masked_with);
  return s;
}

void save(context& ctx, const node_state& s) {
  config_record c;
  c.insert_or_assign("stage", s.stage);
  c.insert_or_assign("round", s.round);
  c.insert_or_assign("nid", static_cast<int64_t>(s.nid));
  c.insert_or_assign("threshold", s.threshold);
  c.insert_or_assign("clipping-range", s.clipping_range);
  c.insert_or_assign("max-weight", s.max_weight);
  c.insert_or_assign("quantization-range", s.q_range);
  c.insert_or_assign("modulus-range", s.mod_range);
  c.insert_or_assign("sk1", s.sk1), c.insert_or_assign("pk1", s.pk1);
  c.insert_or_assign("sk2", s.sk2), c.insert_or_assign("pk2", s.pk2);
  c.insert_or_assign("seed", s.seed);
  c.insert_or_assign("neighbours", s.neighbours);
  c.insert_or_assign("pk1s", s.pk1s), c.insert_or_assign("pk2s", s.pk2s);
  c.insert_or_assign("holders", s.holders);
  c.insert_or_assign("seed-shares", s.seed_shares), c.insert_or_assign("key-shares", s.key_shares);
  c.insert_or_assign("masked-with", s.masked_with);
  ctx.state.insert_or_assign(record_key, std::move(c));
}

failure refuse(const node_state& s, const std::string& why) {
  return fail(errc::invalid_message,
              "secagg+: node " + std::to_string(s.nid) + ", round " + std::to_string(s.round) + ": " + why);
}

key32 to_key(const bytes& b) {
  key32 k{};
  std::copy_n(b.begin(), std::min(b.size(), k.size()), k.begin());
  return k;
}

int bits_of(int64_t m) {
  int b = 0;
  while ((uint64_t{1} << b) < static_cast<uint64_t>(m)) ++b;
  return b;
}

expected<config_record> setup(node_state& s, const config_record& in, uint64_t nid) {
  auto round = need<int64_t>(in, stage_setup, "round");
  auto threshold = need<int64_t>(in, stage_setup, "threshold");
  auto clip = need<double>(in, stage_setup, "clipping-range");
  auto q = need<int64_t>(in, stage_setup, "quantization-range");
  auto m = need<int64_t>(in, stage_setup, "modulus-range");
  auto w = need<double>(in, stage_setup, "max-weight");
  if (!round) return round.error();
  if (!threshold) return threshold.error();
  if (!clip) return clip.error();
  if (!q) return q.error();
  if (!m) return m.error();
  if (!w) return w.error();
  node_state fresh;
  fresh.nid = nid;
  fresh.round = *round;
  // The server's parameters must be usable: the same domains the workflow checks.
  secagg_plus_options o;
  o.clipping_range = *clip, o.max_weight = *w;
  o.quantization_range = *q > 0 ? static_cast<uint64_t>(*q) : 0;
  o.modulus_range = *m > 0 ? static_cast<uint64_t>(*m) : 0;
  if (auto ok = validate(o); !ok) return refuse(fresh, ok.error().what);
  if (*threshold < 2) return refuse(fresh, "a threshold below 2 would hand one node a secret");
  fresh.threshold = *threshold;
  fresh.clipping_range = *clip, fresh.max_weight = *w, fresh.q_range = *q, fresh.mod_range = *m;
  auto k1 = generate_key_pair();
  if (!k1) return k1.error();
  auto k2 = generate_key_pair();
  if (!k2) return k2.error();
  fresh.sk1 = std::move(k1->private_key), fresh.pk1 = std::move(k1->public_key);
  fresh.sk2 = std::move(k2->private_key), fresh.pk2 = std::move(k2->public_key);
  fresh.stage = stage_setup;
  s = std::move(fresh);
  config_record out;
  out.insert_or_assign("pk1", s.pk1);
  out.insert_or_assign("pk2", s.pk2);
  return out;
}

expected<config_record> share_keys(node_state& s, const config_record& in) {
  auto ids = need<std::vector<int64_t>>(in, stage_share_keys, "node-ids");
  auto pk1s = need<std::vector<bytes>>(in, stage_share_keys, "pk1");
  auto pk2s = need<std::vector<bytes>>(in, stage_share_keys, "pk2");
  if (!ids) return ids.error();
  if (!pk1s) return pk1s.error();
  if (!pk2s) return pk2s.error();
  if (pk1s->size() != ids->size() || pk2s->size() != ids->size())
    return refuse(s, "share-keys names " + std::to_string(ids->size()) + " nodes but " +
                         std::to_string(pk1s->size()) + " and " + std::to_string(pk2s->size()) +
                         " public keys");
  if (static_cast<int64_t>(ids->size()) < s.threshold)
    return refuse(s, std::to_string(ids->size()) + " neighbours, fewer than the threshold of " +
                         std::to_string(s.threshold));
  std::set<int64_t> unique_ids(ids->begin(), ids->end());
  if (unique_ids.size() != ids->size()) return refuse(s, "share-keys names a node twice");
  std::set<bytes> keys;
  for (size_t i = 0; i < ids->size(); ++i) keys.insert((*pk1s)[i]), keys.insert((*pk2s)[i]);
  if (keys.size() != 2 * ids->size()) return refuse(s, "share-keys repeats a public key");
  auto self = std::find(ids->begin(), ids->end(), static_cast<int64_t>(s.nid));
  if (self == ids->end()) return refuse(s, "share-keys leaves this node out of its neighbours");
  auto at = static_cast<size_t>(self - ids->begin());
  if ((*pk1s)[at] != s.pk1 || (*pk2s)[at] != s.pk2)
    return refuse(s, "share-keys gives this node public keys that are not its own");
  auto seed = random_bytes(32);
  if (!seed) return seed.error();
  auto n = static_cast<int>(ids->size());
  auto seed_shares = create_shares(*seed, static_cast<int>(s.threshold), n);
  if (!seed_shares) return seed_shares.error();
  auto key_shares = create_shares(s.sk1, static_cast<int>(s.threshold), n);
  if (!key_shares) return key_shares.error();
  std::vector<int64_t> dsts;
  std::vector<bytes> sealed;
  s.holders.clear(), s.seed_shares.clear(), s.key_shares.clear();
  auto sk2 = key_agreement::make(s.sk2);
  if (!sk2) return refuse(s, "its share key: " + sk2.error().what);
  for (size_t i = 0; i < ids->size(); ++i) {
    auto dst = static_cast<uint64_t>((*ids)[i]);
    if (dst == s.nid) {
      s.holders.push_back((*ids)[i]);
      s.seed_shares.push_back((*seed_shares)[i]);
      s.key_shares.push_back((*key_shares)[i]);
      continue;
    }
    auto key = sk2->with((*pk2s)[i], share_label);
    if (!key) return refuse(s, "node " + std::to_string(dst) + "'s key: " + key.error().what);
    auto box = seal(*key, encode_bundle({s.nid, dst, (*seed_shares)[i], (*key_shares)[i]}),
                    share_aad(s.round, s.nid, dst));
    if (!box) return box.error();
    dsts.push_back((*ids)[i]);
    sealed.push_back(std::move(*box));
  }
  s.seed = std::move(*seed);
  s.neighbours = *ids, s.pk1s = *pk1s, s.pk2s = *pk2s;
  s.stage = stage_share_keys;
  config_record out;
  out.insert_or_assign("destinations", std::move(dsts));
  out.insert_or_assign("ciphertexts", std::move(sealed));
  return out;
}

// Opens the shares forwarded at collect-masked-vectors into `s` (holders,
// shares) and says whose they are.
expected<std::vector<int64_t>> take_shares(node_state& s, const config_record& in) {
  auto srcs = need<std::vector<int64_t>>(in, stage_collect, "sources");
  auto boxes = need<std::vector<bytes>>(in, stage_collect, "ciphertexts");
  if (!srcs) return srcs.error();
  if (!boxes) return boxes.error();
  if (srcs->size() != boxes->size())
    return refuse(s, std::to_string(srcs->size()) + " sources for " +
                         std::to_string(boxes->size()) + " ciphertexts");
  if (static_cast<int64_t>(srcs->size()) + 1 < s.threshold)
    return refuse(s, "shares from " + std::to_string(srcs->size()) +
                         " neighbours: with its own, fewer than the threshold of " +
                         std::to_string(s.threshold));
  auto sk2 = key_agreement::make(s.sk2);
  if (!sk2) return refuse(s, "its share key: " + sk2.error().what);
  std::set<int64_t> seen;
  std::vector<int64_t> from;
  for (size_t i = 0; i < srcs->size(); ++i) {
    auto src = (*srcs)[i];
    auto who = "the share from node " + std::to_string(src);
    if (!seen.insert(src).second) return refuse(s, who + " is given twice (a replay)");
    auto pos = std::find(s.neighbours.begin(), s.neighbours.end(), src);
    if (pos == s.neighbours.end() || static_cast<uint64_t>(src) == s.nid)
      return refuse(s, who + ": not a neighbour of this node");
    auto idx = static_cast<size_t>(pos - s.neighbours.begin());
    auto key = sk2->with(s.pk2s[idx], share_label);
    if (!key) return refuse(s, who + ": " + key.error().what);
    auto plain = open(*key, (*boxes)[i], share_aad(s.round, static_cast<uint64_t>(src), s.nid));
    if (!plain) return refuse(s, who + ": " + plain.error().what);
    auto b = decode_bundle(*plain);
    if (!b) return refuse(s, who + ": " + b.error().what);
    if (b->src != static_cast<uint64_t>(src) || b->dst != s.nid)
      return refuse(s, who + " says it is from node " + std::to_string(b->src) + " to node " +
                           std::to_string(b->dst));
    s.holders.push_back(src);
    s.seed_shares.push_back(std::move(b->seed_share));
    s.key_shares.push_back(std::move(b->key_share));
    from.push_back(src);
  }
  return from;
}

expected<record_dict> collect(node_state& s, const message& msg, context& ctx,
                              const handler& next) {
  auto& in = *msg.content().configs(record_key);
  auto from = take_shares(s, in);
  if (!from) return from.error();
  // The handler sees the instruction as the strategy made it.
  record_dict content = msg.content();
  content.erase(record_key);
  message inner{msg.meta(), std::move(content)};
  message out = next(inner, ctx);
  if (out.has_error())
    return refuse(s, "the train handler failed: " + out.error().reason);
  record_dict reply = out.content();
  std::string arrays_name;
  const array_record* arrays = nullptr;
  for (auto& [name, rec] : reply)
    if (auto* a = std::get_if<array_record>(&rec)) {
      if (arrays) return refuse(s, "the train reply holds two ArrayRecords ('" + arrays_name +
                                       "' and '" + name + "'); SecAgg+ sums one");
      arrays = a, arrays_name = name;
    }
  if (!arrays) return refuse(s, "the train reply holds no ArrayRecord");
  double weight = 0;
  for (auto& [name, rec] : reply)
    if (auto* m = std::get_if<metric_record>(&rec))
      if (auto* v = m->get("num-examples")) {
        if (auto* i = std::get_if<int64_t>(v)) weight = static_cast<double>(*i);
        else if (auto* d = std::get_if<double>(v)) weight = *d;
      }
  if (!(weight > 0))
    return refuse(s, "the train reply's metrics carry no positive 'num-examples' to weigh it by");
  if (weight > s.max_weight)
    return refuse(s, "num-examples " + std::to_string(static_cast<int64_t>(weight)) +
                         " exceeds max-weight " + std::to_string(s.max_weight) +
                         ": its weighted update would overflow; raise max-weight");
  auto values = flatten(*arrays);
  if (!values) return refuse(s, values.error().what);
  for (size_t i = 0; i < values->size(); ++i)
    if (!std::isfinite((*values)[i]))
      return refuse(s, "the update holds a non-finite value at " + std::to_string(i));
  auto q_range = static_cast<uint64_t>(s.q_range);
  auto q = quantized_weight(weight, s.max_weight, q_range);
  std::vector<uint64_t> v(values->size() + 1);
  v[0] = q;
  auto coin = random_bytes(8);
  if (!coin) return coin.error();
  uint64_t seed = 0;
  for (int i = 0; i < 8; ++i) seed |= uint64_t{(*coin)[i]} << (8 * i);
  quantize(*values, q, s.clipping_range, q_range, seed, v.data() + 1);
  int bits = bits_of(s.mod_range);
  uint64_t mod_mask = bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  std::vector<uint64_t> scratch;
  auto add_stream = [&](const key32& k, bool negate) { return apply_mask(k, bits, negate, v, scratch); };
  if (auto ok = add_stream(to_key(s.seed), false); !ok) return ok.error();
  s.masked_with.clear();
  auto sk1 = key_agreement::make(s.sk1);
  if (!sk1) return refuse(s, "its mask key: " + sk1.error().what);
  for (auto src : *from) {
    auto idx = static_cast<size_t>(std::find(s.neighbours.begin(), s.neighbours.end(), src) -
                                   s.neighbours.begin());
    auto k = sk1->with(s.pk1s[idx], mask_label);
    if (!k) return refuse(s, "node " + std::to_string(src) + "'s mask key: " + k.error().what);
    // The larger id adds the pair's mask, the smaller subtracts it: they cancel in the sum.
    if (auto ok = add_stream(*k, s.nid < static_cast<uint64_t>(src)); !ok) return ok.error();
    s.masked_with.push_back(src);
  }
  for (auto& x : v) x &= mod_mask;
  std::string layout = layout_of(*arrays);
  // The arrays leave the node only masked; the record stays, empty, under its name.
  reply.insert_or_assign(arrays_name, array_record{});
  arrays = nullptr;
  array_record masked;
  masked.insert_or_assign("masked", encode_vector(v, bits));
  reply.insert_or_assign(record_key, std::move(masked));
  config_record cfg;
  cfg.insert_or_assign("stage", std::string(stage_collect));
  cfg.insert_or_assign("layout", layout);
  cfg.insert_or_assign("arrays-name", arrays_name);
  // The reply's config goes under its own name: the masked ArrayRecord holds "secaggplus".
  reply.insert_or_assign(std::string(record_key) + ".config", std::move(cfg));
  s.stage = stage_collect;
  return reply;
}

expected<config_record> unmask(node_state& s, const config_record& in) {
  auto alive = need<std::vector<int64_t>>(in, stage_unmask, "active");
  auto dead = need<std::vector<int64_t>>(in, stage_unmask, "dead");
  if (!alive) return alive.error();
  if (!dead) return dead.error();
  std::set<int64_t> a(alive->begin(), alive->end()), d(dead->begin(), dead->end());
  if (a.size() != alive->size() || d.size() != dead->size())
    return refuse(s, "unmask names a node twice in one list");
  for (auto x : a)
    if (d.count(x))
      return refuse(s, "unmask asks for both secrets of node " + std::to_string(x) +
                           " (its self mask and its pairwise key): refused, that would unmask it");
  if (static_cast<int64_t>(a.size()) < s.threshold)
    return refuse(s, std::to_string(a.size()) + " neighbours alive, fewer than the threshold of " +
                         std::to_string(s.threshold));
  std::vector<int64_t> ids;
  std::vector<bytes> shares;
  auto find = [&](int64_t x) -> std::optional<size_t> {
    auto it = std::find(s.holders.begin(), s.holders.end(), x);
    if (it == s.holders.end()) return std::nullopt;
    return static_cast<size_t>(it - s.holders.begin());
  };
  for (auto x : *alive) {
    auto i = find(x);
    if (!i) return refuse(s, "unmask asks for node " + std::to_string(x) + "'s share, which this node does not hold");
    ids.push_back(x), shares.push_back(s.seed_shares[*i]);
  }
  for (auto x : *dead) {
    auto i = find(x);
    if (!i) return refuse(s, "unmask asks for node " + std::to_string(x) + "'s share, which this node does not hold");
    if (static_cast<uint64_t>(x) == s.nid)
      return refuse(s, "unmask calls this node dead while asking it");
    ids.push_back(x), shares.push_back(s.key_shares[*i]);
  }
  // Revealed: the round's secrets are spent, and a second unmask is out of order.
  s.stage = stage_unmask;
  s.seed.clear(), s.sk1.clear(), s.sk2.clear(), s.seed_shares.clear(), s.key_shares.clear();
  config_record out;
  out.insert_or_assign("node-ids", std::move(ids));
  out.insert_or_assign("shares", std::move(shares));
  return out;
}

const char* expected_after(const std::string& stage) {
  if (stage == stage_setup) return stage_share_keys;
  if (stage == stage_share_keys) return stage_collect;
  if (stage == stage_collect) return stage_unmask;
  return stage_setup;
}

}  // namespace

message secaggplus_mod(const message& msg, context& ctx, const handler& next) {
  if (message_category(msg.meta().message_type) != "train" || !msg.has_content())
    return next(msg, ctx);
  auto* in = msg.content().configs(record_key);
  if (!in) return next(msg, ctx);
  auto state = load(ctx);
  if (state.nid == 0) state.nid = msg.meta().dst_node_id;
  auto reject = [&](const failure& f) {
    return make_error_reply(msg, {error_code::mod_failed_precondition, f.what});
  };
  auto* stage = field<std::string>(*in, "stage");
  if (!stage) return reject(refuse(state, "the instruction's 'stage' is missing"));
  if (*stage != stage_setup) {
    auto* round = field<int64_t>(*in, "round");
    if (!round) return reject(refuse(state, "stage " + *stage + " names no round"));
    const char* want = expected_after(state.stage);
    if (*stage != want || *round != state.round)
      return reject(refuse(state, "expected stage " + std::string(want) + " of round " +
                                      std::to_string(state.round) + ", got " + *stage +
                                      " of round " + std::to_string(*round) +
                                      " (out of order or replayed)"));
  }
  record_dict content;
  if (*stage == stage_setup || *stage == stage_share_keys || *stage == stage_unmask) {
    auto out = *stage == stage_setup        ? setup(state, *in, msg.meta().dst_node_id)
               : *stage == stage_share_keys ? share_keys(state, *in)
                                            : unmask(state, *in);
    if (!out) return reject(out.error());
    out->insert_or_assign("stage", *stage);
    content.insert_or_assign(record_key, std::move(*out));
  } else if (*stage == stage_collect) {
    auto out = collect(state, msg, ctx, next);
    if (!out) return reject(out.error());
    content = std::move(*out);
  } else {
    return reject(refuse(state, "unknown stage '" + *stage + "'"));
  }
  save(ctx, state);
  return make_reply(msg, std::move(content));
}

}  // namespace stamen
