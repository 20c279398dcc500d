#include "runtime/secagg/secagg_plus_workflow.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>

#include "runtime/format.hpp"
#include "runtime/secagg/quantization.hpp"
#include "runtime/secagg/secagg_crypto.hpp"
#include "runtime/secagg/secagg_protocol.hpp"
#include "runtime/secagg/shamir.hpp"

namespace stamen {

using namespace secagg;

namespace {

template <class T>
const T* field(const config_record& c, const char* key) {
  auto* v = c.get(key);
  return v ? std::get_if<T>(v) : nullptr;
}

// One sampled node, as the server sees it through the round.
struct peer {
  message instruction;             // what the strategy built for it
  std::vector<uint64_t> ring;      // its neighbours, itself included, in ring order
  bytes pk1, pk2;                  // setup: its public keys
  std::vector<std::pair<uint64_t, bytes>> inbox;  // share-keys: (source, sealed shares) for it
  std::vector<uint64_t> sources;   // collect: whose shares it was sent (and masked with)
  bool alive = true;
  std::optional<message> reply;    // collect: its reply, the masked vector taken out
  std::string arrays_name;         // collect: where its reply held its arrays
};

class round_run {
 public:
  round_run(const secagg_plus_options& o, int round, double timeout, grid& g,
            secure_aggregation_report& rep)
      : o_(o), round_(round), timeout_(timeout), g_(g), rep_(rep), bits_(modulus_bits(o)) {}

  std::map<uint64_t, peer> peers;

  void drop(uint64_t id, const char* stage, std::string reason) {
    auto& p = peers.at(id);
    if (!p.alive) return;
    p.alive = false;
    rep_.dropped.push_back({id, stage, std::move(reason)});
  }

  std::vector<uint64_t> alive() const {
    std::vector<uint64_t> out;
    for (auto& [id, p] : peers)
      if (p.alive) out.push_back(id);
    return out;
  }

  // Sends `build(id)` to each of `ids` as this round's train message and
  // returns the content of each reply; a node that errs or does not answer
  // is dropped at `stage`.
  std::map<uint64_t, record_dict> exchange(const char* stage, const std::vector<uint64_t>& ids,
                                           const std::function<record_dict(uint64_t)>& build) {
    auto& b = rep_.bytes.emplace_back();
    b.stage = stage;
    std::vector<message> msgs;
    for (auto id : ids) {
      auto m = g_.create_message(build(id), "train", id, std::to_string(round_), timeout_);
      if (!m) {
        drop(id, stage, m.error().what);
        continue;
      }
      b.sent += payload_bytes(m->content());
      msgs.push_back(std::move(*m));
    }
    std::set<uint64_t> want(ids.begin(), ids.end());
    std::map<uint64_t, record_dict> out;
    std::map<uint64_t, std::string> errors;
    for (auto& r : g_.send_and_receive(std::move(msgs), timeout_)) {
      auto src = r.meta().src_node_id;
      if (!want.count(src) || out.count(src) || errors.count(src)) continue;
      if (r.has_error()) {
        errors[src] = "error " + std::to_string(r.error().code) + ": " + r.error().reason;
        continue;
      }
      b.received += payload_bytes(r.content());
      out.emplace(src, std::move(r.content()));
    }
    for (auto id : ids) {
      if (out.count(id) || !peers.at(id).alive) continue;
      auto e = errors.find(id);
      drop(id, stage, e != errors.end() ? e->second
                                        : "no reply within " + format_double("%.2f", timeout_) + "s");
    }
    return out;
  }

  // Leaves out, until none is left, every live node with fewer than
  // `threshold` live holders of its shares (`count(id)` says how many).
  void prune(const char* stage, const std::function<size_t(uint64_t)>& count, int threshold) {
    for (bool changed = true; changed;) {
      changed = false;
      for (auto id : alive()) {
        auto n = count(id);
        if (n < static_cast<size_t>(threshold)) {
          drop(id, stage, std::to_string(n) + " live neighbour(s) (itself included), fewer than the threshold of " +
                              std::to_string(threshold));
          changed = true;
        }
      }
    }
  }

  int bits() const { return bits_; }
  double timeout() const { return timeout_; }
  int round() const { return round_; }

 private:
  const secagg_plus_options& o_;
  int round_;
  double timeout_;
  grid& g_;
  secure_aggregation_report& rep_;
  int bits_;
};

config_record stage_record(const char* stage, int round) {
  config_record c;
  c.insert_or_assign("stage", std::string(stage));
  c.insert_or_assign("round", static_cast<int64_t>(round));
  return c;
}

record_dict with(config_record c) {
  record_dict d;
  d.insert_or_assign(record_key, std::move(c));
  return d;
}

}  // namespace

secagg_plus_workflow::secagg_plus_workflow(secagg_plus_options opts) {
  auto ok = validate(opts);
  if (!ok) throw std::invalid_argument(ok.error().what);
  opts_ = *ok;
  rng_.seed(opts_.seed ? opts_.seed : std::random_device{}());
}

std::optional<std::string> secagg_plus_workflow::run(grid& g, int round,
                                                     std::vector<message> instructions,
                                                     const array_record& current, double timeout_s,
                                                     reply_sink& sink, phase_report& report) {
  if (instructions.empty()) return std::nullopt;
  auto& rep = report.secure_aggregation.emplace();
  double timeout = opts_.timeout > 0 ? opts_.timeout : timeout_s;
  round_run r{opts_, round, timeout, g, rep};
  std::vector<uint64_t> order;
  for (auto& m : instructions) {
    auto id = m.meta().dst_node_id;
    if (r.peers.count(id)) continue;
    order.push_back(id);
    r.peers[id].instruction = std::move(m);
  }
  // Every node hears exactly once how it ended: a reply or an error.
  auto finish = [&](const std::optional<std::string>& failed) {
    std::map<uint64_t, std::string> why;
    for (auto& d : rep.dropped) why.emplace(d.node, "secagg+: dropped at " + d.stage + ": " + d.reason);
    for (auto& [id, p] : r.peers) {
      if (p.alive && p.reply && !failed) {
        sink.on_reply(*p.reply);
        continue;
      }
      auto it = why.find(id);
      std::string reason = it != why.end() ? it->second
                           : failed        ? "secagg+: the round's secure sum failed: " + *failed
                                           : "secagg+: left out";
      sink.on_reply(make_error_reply(p.instruction, {error_code::reply_unavailable, reason}));
    }
    return failed;
  };

  auto params = resolve(opts_, order.size());
  if (!params) return finish(params.error().what);
  rep.num_shares = params->num_shares;
  rep.threshold = params->threshold;
  const int T = params->threshold;

  // The ring: each node's neighbours are the num-shares / 2 on each side of
  // it in a random order, so that no one chooses its neighbours.
  std::shuffle(order.begin(), order.end(), rng_);
  auto n = static_cast<int64_t>(order.size());
  int64_t half = params->num_shares >> 1;
  for (int64_t i = 0; i < n; ++i) {
    auto& ring = r.peers[order[i]].ring;
    for (int64_t off = -half; off <= half; ++off) {
      auto id = order[static_cast<size_t>(((i + off) % n + n) % n)];
      if (std::find(ring.begin(), ring.end(), id) == ring.end()) ring.push_back(id);
    }
  }
  auto live_in = [&](const std::vector<uint64_t>& ids) {
    std::vector<uint64_t> out;
    for (auto id : ids)
      if (r.peers.at(id).alive) out.push_back(id);
    return out;
  };
  auto too_few = [&](const char* stage) -> std::optional<std::string> {
    auto left = r.alive().size();
    if (left >= 2) return std::nullopt;
    return std::to_string(left) + " node(s) left after " + stage + ", fewer than 2";
  };

  // Stage 1, setup: the parameters out, two public keys back.
  {
    auto cfg = stage_record(stage_setup, round);
    cfg.insert_or_assign("sample-number", n);
    cfg.insert_or_assign("share-number", static_cast<int64_t>(params->num_shares));
    cfg.insert_or_assign("threshold", static_cast<int64_t>(T));
    cfg.insert_or_assign("clipping-range", opts_.clipping_range);
    cfg.insert_or_assign("quantization-range", static_cast<int64_t>(opts_.quantization_range));
    cfg.insert_or_assign("modulus-range", static_cast<int64_t>(opts_.modulus_range));
    cfg.insert_or_assign("max-weight", opts_.max_weight);
    auto replies = r.exchange(stage_setup, r.alive(), [&](uint64_t) { return with(cfg); });
    std::set<bytes> keys;
    for (auto& [id, c] : replies) {
      auto* rec = c.configs(record_key);
      auto* pk1 = rec ? field<bytes>(*rec, "pk1") : nullptr;
      auto* pk2 = rec ? field<bytes>(*rec, "pk2") : nullptr;
      if (!pk1 || !pk2 || pk1->size() != 32 || pk2->size() != 32) {
        r.drop(id, stage_setup, "its reply holds no pair of 32-byte public keys");
        continue;
      }
      if (!keys.insert(*pk1).second || !keys.insert(*pk2).second) {
        r.drop(id, stage_setup, "its public key repeats another node's");
        continue;
      }
      r.peers[id].pk1 = *pk1, r.peers[id].pk2 = *pk2;
    }
    r.prune(stage_setup, [&](uint64_t id) { return live_in(r.peers[id].ring).size(); }, T);
    if (auto f = too_few(stage_setup)) return finish(f);
  }

  // Stage 2, share-keys: each node gets its live neighbours' keys and sends
  // back its shares sealed for each of them.
  {
    auto replies = r.exchange(stage_share_keys, r.alive(), [&](uint64_t id) {
      auto cfg = stage_record(stage_share_keys, round);
      std::vector<int64_t> ids;
      std::vector<bytes> pk1, pk2;
      for (auto nb : live_in(r.peers[id].ring)) {
        ids.push_back(static_cast<int64_t>(nb));
        pk1.push_back(r.peers[nb].pk1), pk2.push_back(r.peers[nb].pk2);
      }
      cfg.insert_or_assign("node-ids", std::move(ids));
      cfg.insert_or_assign("pk1", std::move(pk1));
      cfg.insert_or_assign("pk2", std::move(pk2));
      return with(std::move(cfg));
    });
    for (auto& [id, c] : replies) {
      auto* rec = c.configs(record_key);
      auto* dsts = rec ? field<std::vector<int64_t>>(*rec, "destinations") : nullptr;
      auto* boxes = rec ? field<std::vector<bytes>>(*rec, "ciphertexts") : nullptr;
      if (!dsts || !boxes || dsts->size() != boxes->size()) {
        r.drop(id, stage_share_keys, "its reply holds no matching destinations and ciphertexts");
        continue;
      }
      auto& ring = r.peers[id].ring;
      std::set<int64_t> seen;
      bool ok = true;
      for (auto d : *dsts)
        ok = ok && seen.insert(d).second && static_cast<uint64_t>(d) != id &&
             std::find(ring.begin(), ring.end(), static_cast<uint64_t>(d)) != ring.end();
      if (!ok) {
        r.drop(id, stage_share_keys, "its reply sends shares to a node that is not its neighbour");
        continue;
      }
      for (size_t i = 0; i < dsts->size(); ++i)
        r.peers[static_cast<uint64_t>((*dsts)[i])].inbox.emplace_back(id, (*boxes)[i]);
    }
    // A node must hold enough shares of its own secrets: itself and the
    // live neighbours that sent it theirs hold each other's.
    r.prune(stage_share_keys, [&](uint64_t id) {
      size_t k = 1;
      for (auto& [src, box] : r.peers[id].inbox) k += r.peers[src].alive ? 1 : 0;
      return k;
    }, T);
    if (auto f = too_few(stage_share_keys)) return finish(f);
  }

  // Stage 3, collect-masked-vectors: the strategy's instruction plus the
  // shares sent to each node; the masked, quantized, weighted update back.
  std::string layout = layout_of(current);
  size_t count = 1;
  for (auto& [name, a] : current) count += static_cast<size_t>(a.numel());
  std::vector<uint64_t> sum(count, 0);
  std::set<uint64_t> collected_from;  // nodes sent the collect stage: their keys are out
  {
    auto ids = r.alive();
    collected_from.insert(ids.begin(), ids.end());
    auto replies = r.exchange(stage_collect, ids, [&](uint64_t id) {
      auto& p = r.peers[id];
      auto cfg = stage_record(stage_collect, round);
      std::vector<int64_t> srcs;
      std::vector<bytes> boxes;
      p.sources.clear();
      for (auto& [src, box] : p.inbox)
        if (r.peers[src].alive) {
          srcs.push_back(static_cast<int64_t>(src));
          boxes.push_back(box);
          p.sources.push_back(src);
        }
      p.inbox.clear();
      cfg.insert_or_assign("sources", std::move(srcs));
      cfg.insert_or_assign("ciphertexts", std::move(boxes));
      record_dict content = p.instruction.content();
      content.insert_or_assign(record_key, std::move(cfg));
      return content;
    });
    for (auto& [id, c] : replies) {
      auto* cfg = c.configs(std::string(record_key) + ".config");
      auto* masked = c.arrays(record_key);
      auto* vec = masked ? masked->get("masked") : nullptr;
      auto* got_layout = cfg ? field<std::string>(*cfg, "layout") : nullptr;
      auto* name = cfg ? field<std::string>(*cfg, "arrays-name") : nullptr;
      if (!vec || !got_layout || !name) {
        r.drop(id, stage_collect, "its reply holds no masked vector");
        continue;
      }
      if (*got_layout != layout) {
        r.drop(id, stage_collect, "its update's arrays are " + *got_layout + ", not " + layout);
        continue;
      }
      auto v = decode_vector(*vec, r.bits(), count);
      if (!v) {
        r.drop(id, stage_collect, v.error().what);
        continue;
      }
      for (size_t i = 0; i < count; ++i) sum[i] += (*v)[i];
      auto& p = r.peers[id];
      p.arrays_name = *name;
      c.erase(record_key);
      c.erase(std::string(record_key) + ".config");
      p.reply = make_reply(p.instruction, std::move(c));
      // make_reply stamps the reply as the node's answer to its instruction.
    }
  }
  std::vector<uint64_t> survivors = r.alive();
  rep.survivors = survivors;
  if (survivors.size() < 2)
    return finish(std::to_string(survivors.size()) +
                  " masked update(s) received: a sum of fewer than 2 would reveal one");
  std::set<uint64_t> surviving(survivors.begin(), survivors.end());
  std::vector<uint64_t> lost;  // keys shared, update lost: their pairwise masks must go
  for (auto id : collected_from)
    if (!surviving.count(id)) lost.push_back(id);

  // Stage 4, unmask: each survivor reveals, for each neighbour whose shares
  // it holds, b's share if that one survived and sk1's if it dropped.
  std::map<uint64_t, std::vector<bytes>> seed_shares, key_shares;
  {
    std::map<uint64_t, std::pair<std::set<int64_t>, std::set<int64_t>>> asked;
    auto replies = r.exchange(stage_unmask, survivors, [&](uint64_t id) {
      auto cfg = stage_record(stage_unmask, round);
      std::vector<int64_t> active{static_cast<int64_t>(id)}, dead;
      for (auto src : r.peers[id].sources)
        (surviving.count(src) ? active : dead).push_back(static_cast<int64_t>(src));
      asked[id] = {{active.begin(), active.end()}, {dead.begin(), dead.end()}};
      cfg.insert_or_assign("active", std::move(active));
      cfg.insert_or_assign("dead", std::move(dead));
      return with(std::move(cfg));
    });
    for (auto& [id, c] : replies) {
      auto* rec = c.configs(record_key);
      auto* ids = rec ? field<std::vector<int64_t>>(*rec, "node-ids") : nullptr;
      auto* shares = rec ? field<std::vector<bytes>>(*rec, "shares") : nullptr;
      if (!ids || !shares || ids->size() != shares->size()) {
        rep.dropped.push_back({id, stage_unmask, "its reply holds no matching node ids and shares"});
        continue;
      }
      auto& [active, dead] = asked[id];
      std::set<int64_t> seen;
      for (size_t i = 0; i < ids->size(); ++i) {
        auto x = (*ids)[i];
        if (!seen.insert(x).second) continue;
        if (active.count(x)) seed_shares[static_cast<uint64_t>(x)].push_back((*shares)[i]);
        else if (dead.count(x)) key_shares[static_cast<uint64_t>(x)].push_back((*shares)[i]);
      }
    }
    // A survivor that fails here is noted among the dropped, but its update
    // is in the sum: it stays a result.
    for (auto id : survivors) r.peers[id].alive = true;
  }

  // Rebuild the secrets and take the masks out of the sum.
  std::vector<uint64_t> scratch;
  for (auto id : survivors) {
    auto& shares = seed_shares[id];
    if (shares.size() < static_cast<size_t>(T))
      return finish("node " + std::to_string(id) + "'s self mask: " + std::to_string(shares.size()) +
                    " share(s) revealed, fewer than the threshold of " + std::to_string(T));
    auto seed = combine_shares(shares, T);
    if (!seed || seed->size() != 32)
      return finish("node " + std::to_string(id) + "'s self mask: " +
                    (seed ? "a seed of the wrong length" : seed.error().what));
    key32 k{};
    std::copy(seed->begin(), seed->end(), k.begin());
    if (auto ok = apply_mask(k, r.bits(), true, sum, scratch); !ok) return finish(ok.error().what);
  }
  for (auto id : lost) {
    std::vector<uint64_t> masked_with;
    for (auto s : survivors) {
      auto& src = r.peers[s].sources;
      if (std::find(src.begin(), src.end(), id) != src.end()) masked_with.push_back(s);
    }
    if (masked_with.empty()) continue;
    auto& shares = key_shares[id];
    if (shares.size() < static_cast<size_t>(T))
      return finish("node " + std::to_string(id) + " dropped after sharing its keys and " +
                    std::to_string(shares.size()) +
                    " share(s) of its key were revealed, fewer than the threshold of " +
                    std::to_string(T));
    auto sk = combine_shares(shares, T);
    if (!sk) return finish("node " + std::to_string(id) + "'s key: " + sk.error().what);
    auto pk = public_key_of(*sk);
    if (!pk || *pk != r.peers[id].pk1)
      return finish("the shares of node " + std::to_string(id) +
                    " rebuild a key that is not its own (a share was altered)");
    auto dead = key_agreement::make(*sk);
    if (!dead) return finish("node " + std::to_string(id) + "'s key: " + dead.error().what);
    for (auto s : masked_with) {
      auto k = dead->with(r.peers[s].pk1, mask_label);
      if (!k) return finish(k.error().what);
      // Node s added the pair's mask if s > id and subtracted it if s < id.
      if (auto ok = apply_mask(*k, r.bits(), s > id, sum, scratch); !ok)
        return finish(ok.error().what);
    }
    rep.recovered.push_back(id);
  }
  std::sort(rep.recovered.begin(), rep.recovered.end());
  uint64_t mod_mask = r.bits() >= 64 ? ~uint64_t{0} : (uint64_t{1} << r.bits()) - 1;
  for (auto& x : sum) x &= mod_mask;
  uint64_t total_q = sum[0];
  if (total_q == 0 || total_q > survivors.size() * opts_.quantization_range)
    return finish("the unmasked weights sum to " + std::to_string(total_q) +
                  ", outside (0, survivors x quantization-range]: a share or a mask was wrong");
  auto mean = dequantize_mean(sum.data() + 1, count - 1, survivors.size(), total_q,
                              opts_.clipping_range, opts_.quantization_range);
  sum = {};
  auto arrays = unflatten(mean, current);
  if (!arrays) return finish(arrays.error().what);
  for (auto id : survivors) {
    auto& p = r.peers[id];
    p.reply->content().insert_or_assign(p.arrays_name, *arrays);
  }
  return finish(std::nullopt);
}

}  // namespace stamen
