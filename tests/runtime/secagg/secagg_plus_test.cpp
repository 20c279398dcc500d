// SecAgg+ end to end in the programming model: FedAvg with the workflow on
// a scripted grid whose nodes carry secaggplus_mod, against the plain
// weighted mean of the same updates.
#include "runtime/secagg/secagg_plus_mod.hpp"
#include "runtime/secagg/secagg_plus_workflow.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <map>
#include <set>

#include "runtime/secagg/secagg_protocol.hpp"
#include "runtime/strategy/fed_avg.hpp"
#include "runtime/strategy/fed_median.hpp"
#include "tests/support/scripted_grid.hpp"

using namespace stamen;
using namespace stamen::secagg;

namespace {

constexpr size_t dim = 2000;

// Node k's update: deterministic, different per node, within [-1, 1].
std::vector<float> update_of(uint64_t node, size_t n = dim) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(node * (i + 1))) * 0.9);
  return v;
}

int64_t weight_of(uint64_t node) { return 40 + 13 * static_cast<int64_t>(node); }

array_record model(size_t n = dim) {
  array_record r;
  r.insert_or_assign("w", array::from_values(dtype::float32, {static_cast<int64_t>(n)},
                                             std::vector<float>(n, 0.f)));
  return r;
}

// A train handler that answers with the node's fixed update.
handler trainer(size_t n = dim) {
  return [n](const message& m, context& ctx) {
    record_dict c;
    array_record a;
    a.insert_or_assign("w", array::from_values(dtype::float32, {static_cast<int64_t>(n)},
                                               update_of(ctx.node_id, n)));
    c.insert_or_assign("arrays", std::move(a));
    c.insert_or_assign("metrics", metric_record{{"num-examples", weight_of(ctx.node_id)},
                                                {"train_loss", 0.5}});
    return make_reply(m, c);
  };
}

std::string stage_of(const message& m) {
  auto* c = m.has_content() ? m.content().configs(record_key) : nullptr;
  auto* s = c ? c->get("stage") : nullptr;
  auto* str = s ? std::get_if<std::string>(s) : nullptr;
  return str ? *str : "";
}

// Nodes in `crash` stop answering (an error, as a dead node's timeout) from
// the stage named on; what each node sent at collect is kept in `seen`.
struct harness {
  std::map<uint64_t, std::string> crash;
  std::map<uint64_t, std::vector<uint64_t>> seen;
  int bits = 32;

  std::shared_ptr<client_app> app(size_t n = dim) {
    auto outer = [this](const message& m, context& ctx, const handler& next) {
      static const std::vector<std::string> order{stage_setup, stage_share_keys, stage_collect,
                                                  stage_unmask};
      auto it = crash.find(ctx.node_id);
      if (it != crash.end()) {
        auto at = std::find(order.begin(), order.end(), it->second) - order.begin();
        auto now = std::find(order.begin(), order.end(), stage_of(m)) - order.begin();
        if (now >= at)
          return make_error_reply(m, {error_code::client_app_crashed, "crashed (test)"});
      }
      auto reply = next(m, ctx);
      if (reply.has_content())
        if (auto* a = reply.content().arrays(record_key))
          if (auto* v = a->get("masked")) seen[ctx.node_id] = *decode_vector(*v, bits, v->numel());
      return reply;
    };
    auto a = std::make_shared<client_app>(std::vector<mod>{outer, secaggplus_mod});
    a->train(trainer(n));
    return a;
  }
};

// A grid that lets the test play a dishonest server: `tamper` may change
// every instruction before the nodes see it.
class tampering_grid : public grid {
 public:
  explicit tampering_grid(test::scripted_grid& g) : g_(g) {}
  std::function<void(message&)> tamper = [](message&) {};
  uint64_t run_id() const override { return g_.run_id(); }
  std::vector<uint64_t> node_ids() override { return g_.node_ids(); }
  size_t wait_for_nodes(size_t n, double t) override { return g_.wait_for_nodes(n, t); }
  std::vector<std::string> push_messages(std::vector<message> msgs) override {
    for (auto& m : msgs) tamper(m);
    return g_.push_messages(std::move(msgs));
  }
  std::vector<message> pull_messages(const std::vector<std::string>& ids) override {
    return g_.pull_messages(ids);
  }
  stream_report send_and_stream(std::vector<message> msgs, double t, reply_sink& s) override {
    for (auto& m : msgs) tamper(m);
    return g_.send_and_stream(std::move(msgs), t, s);
  }
  std::unique_ptr<instruction_stream> open_stream() override { return g_.open_stream(); }

 private:
  test::scripted_grid& g_;
};

fed_avg_options avg_opts() {
  fed_avg_options o;
  o.fraction_evaluate = 0;
  o.min_train_nodes = 2;
  o.min_available_nodes = 2;
  o.seed = 3;
  return o;
}

secagg_plus_options sa_opts() {
  secagg_plus_options o;
  o.num_shares = {5, false};
  o.reconstruction_threshold = {3, false};
  o.seed = 11;
  return o;
}

// The plain weighted mean of the updates of `nodes`, and the bound the
// secure mean must keep to: n (2c + max|x|) / sum(q_i) (quantization.hpp).
std::pair<std::vector<double>, double> plain_mean(const std::vector<uint64_t>& nodes,
                                                  const secagg_plus_options& o) {
  std::vector<double> m(dim, 0);
  double total = 0, total_q = 0, max_abs = 0;
  for (auto k : nodes) {
    auto u = update_of(k);
    double w = static_cast<double>(weight_of(k));
    total += w;
    total_q += std::llround(w / o.max_weight * static_cast<double>(o.quantization_range));
    for (size_t i = 0; i < dim; ++i) m[i] += w * u[i], max_abs = std::max(max_abs, std::abs(double(u[i])));
  }
  for (auto& x : m) x /= total;
  double n = static_cast<double>(nodes.size());
  double bound = n * (2 * o.clipping_range + max_abs) / total_q;
  return {m, bound};
}

double max_error(const array_record& got, const std::vector<double>& want) {
  auto v = got.get("w")->to_vector<float>();
  double e = 0;
  for (size_t i = 0; i < want.size(); ++i) e = std::max(e, std::abs(v[i] - want[i]));
  return e;
}

// A run of FedAvg under SecAgg+; a run whose every reply failed throws
// run_error after reporting its result, which is what comes back then.
strategy_result run(grid& g, const secagg_plus_options& o, int rounds = 1) {
  fed_avg s{avg_opts()};
  s.set_train_workflow(std::make_shared<secagg_plus_workflow>(o));
  result_capture capture;
  run_scope scope{capture};
  try {
    return s.start(g, model(), rounds, 60);
  } catch (const run_error&) {
    BOOST_REQUIRE(capture.result());
    return *capture.result();
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(secagg_plus)

BOOST_AUTO_TEST_CASE(the_secure_mean_is_the_weighted_mean_within_the_quantization_bound) {
  harness h;
  test::scripted_grid g{10, h.app()};
  auto o = sa_opts();
  auto r = run(g, o);
  BOOST_REQUIRE_EQUAL(r.train_rounds.size(), 1u);
  auto& tr = r.train_rounds[0];
  BOOST_TEST(tr.results == 10u);
  BOOST_TEST(tr.failures == 0u);
  BOOST_REQUIRE(tr.secure_aggregation);
  BOOST_TEST(tr.secure_aggregation->survivors.size() == 10u);
  BOOST_TEST(tr.secure_aggregation->num_shares == 5);
  BOOST_TEST(tr.secure_aggregation->bytes.size() == 4u);
  auto [want, bound] = plain_mean({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, o);
  auto err = max_error(r.arrays, want);
  BOOST_TEST_MESSAGE("max error " << err << ", bound " << bound);
  BOOST_TEST(err <= bound);
  BOOST_TEST(err > 0.0);  // quantized, so not exact: the bound is what is promised
  // The strategy's metrics came through from the nodes' replies.
  BOOST_TEST(r.train_metrics_clientapp.count(1) == 1u);
}

// Updates on the quantization grid (weight = max-weight, x = k 2c/Q - c)
// quantize exactly: the masks must then cancel to the bit, so the mean that
// comes back is the plain mean to float precision.
BOOST_AUTO_TEST_CASE(masks_cancel_exactly_in_the_sum) {
  auto o = sa_opts();
  o.max_weight = 100;
  o.quantization_range = 1 << 10;
  o.clipping_range = 1;
  auto step = 2 * o.clipping_range / static_cast<double>(o.quantization_range);
  auto app = std::make_shared<client_app>(std::vector<mod>{secaggplus_mod});
  app->train([&](const message& m, context& ctx) {
    std::vector<float> v(64);
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = static_cast<float>(static_cast<double>((ctx.node_id * 37 + i * 11) % 1024) * step - 1);
    record_dict c;
    array_record a;
    a.insert_or_assign("w", array::from_values(dtype::float32, {64}, v));
    c.insert_or_assign("arrays", std::move(a));
    c.insert_or_assign("metrics", metric_record{{"num-examples", int64_t{100}}});
    return make_reply(m, c);
  });
  test::scripted_grid g{6, app};
  fed_avg s{avg_opts()};
  s.set_train_workflow(std::make_shared<secagg_plus_workflow>(o));
  auto r = s.start(g, model(64), 1, 60);
  auto got = r.arrays.get("w")->to_vector<float>();
  for (size_t i = 0; i < 64; ++i) {
    double want = 0;
    for (uint64_t k = 1; k <= 6; ++k)
      want += static_cast<double>((k * 37 + i * 11) % 1024) * step - 1;
    want /= 6;
    BOOST_TEST(std::abs(got[i] - want) < 1e-6, "at " << i << ": " << got[i] << " vs " << want);
  }
}

// What the server sees of one node is uniform noise: over many
// coordinates its correlation with the node's update is that of unrelated
// samples (|r| < 5 / sqrt(n), five standard deviations), and the masked
// values cover the modulus evenly.
BOOST_AUTO_TEST_CASE(a_masked_vector_does_not_reveal_its_update) {
  constexpr size_t n = 20000;
  harness h;
  test::scripted_grid g{5, h.app(n)};
  fed_avg s{avg_opts()};
  s.set_train_workflow(std::make_shared<secagg_plus_workflow>(sa_opts()));
  s.start(g, model(n), 1, 60);
  BOOST_REQUIRE(h.seen.count(2));
  auto& masked = h.seen[2];
  BOOST_REQUIRE_EQUAL(masked.size(), n + 1);
  auto u = update_of(2, n);
  double mx = 0, mu = 0;
  for (size_t i = 0; i < n; ++i) mx += static_cast<double>(masked[i + 1]), mu += u[i];
  mx /= n, mu /= n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    double dx = static_cast<double>(masked[i + 1]) - mx, dy = u[i] - mu;
    sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
  }
  double corr = sxy / std::sqrt(sxx * syy);
  BOOST_TEST_MESSAGE("correlation " << corr);
  BOOST_TEST(std::abs(corr) < 5 / std::sqrt(static_cast<double>(n)));
  // Mean of uniform [0, 2^32): 2^31, standard error 2^32 / sqrt(12 n).
  BOOST_TEST(std::abs(mx - 2147483648.0) < 5 * 4294967296.0 / std::sqrt(12.0 * n));
}

BOOST_AUTO_TEST_CASE(a_node_crashed_after_sharing_keys_is_recovered) {
  harness h;
  h.crash[3] = stage_collect;
  test::scripted_grid g{10, h.app()};
  auto o = sa_opts();
  auto r = run(g, o);
  auto& tr = r.train_rounds[0];
  BOOST_TEST(tr.results == 9u);
  BOOST_TEST(tr.failures == 1u);
  auto& sa = *tr.secure_aggregation;
  BOOST_TEST(sa.recovered == std::vector<uint64_t>{3});
  BOOST_REQUIRE_EQUAL(sa.dropped.size(), 1u);
  BOOST_TEST(sa.dropped[0].node == 3u);
  BOOST_TEST(sa.dropped[0].stage == stage_collect);
  BOOST_TEST(tr.failure_reasons[0].find("dropped at collect-masked-vectors") != std::string::npos);
  auto [want, bound] = plain_mean({1, 2, 4, 5, 6, 7, 8, 9, 10}, o);
  BOOST_TEST(max_error(r.arrays, want) <= bound);
}

BOOST_AUTO_TEST_CASE(nodes_dropped_before_sharing_keys_are_left_out) {
  harness h;
  h.crash[2] = stage_setup;
  h.crash[7] = stage_share_keys;
  test::scripted_grid g{10, h.app()};
  auto o = sa_opts();
  auto r = run(g, o);
  auto& tr = r.train_rounds[0];
  BOOST_TEST(tr.results == 8u);
  auto& sa = *tr.secure_aggregation;
  BOOST_TEST(sa.recovered.empty());
  BOOST_TEST(sa.dropped.size() == 2u);
  auto [want, bound] = plain_mean({1, 3, 4, 5, 6, 8, 9, 10}, o);
  BOOST_TEST(max_error(r.arrays, want) <= bound);
}

BOOST_AUTO_TEST_CASE(too_few_survivors_fail_the_round_and_keep_the_arrays) {
  harness h;
  // 5 nodes, all neighbours of each other, threshold 3: three crashes after
  // key sharing leave two survivors to reveal shares, fewer than 3.
  h.crash[1] = h.crash[2] = h.crash[3] = stage_collect;
  test::scripted_grid g{5, h.app()};
  auto r = run(g, sa_opts());
  auto& tr = r.train_rounds[0];
  BOOST_TEST(tr.results == 0u);
  BOOST_TEST(tr.failures == 5u);
  bool said = false;
  for (auto& f : tr.failure_reasons)
    said = said || f.find("fewer than the threshold of 3") != std::string::npos;
  BOOST_TEST(said);
  BOOST_TEST((r.arrays == model()));
}

BOOST_AUTO_TEST_CASE(an_honest_node_never_reveals_both_secrets_of_a_neighbour) {
  harness h;
  test::scripted_grid inner{5, h.app()};
  tampering_grid g{inner};
  std::set<uint64_t> asked;
  // The server asks every node for both secrets of the first node it names alive.
  g.tamper = [&](message& m) {
    if (stage_of(m) != stage_unmask) return;
    auto& c = *m.content().get_as<config_record>(record_key);
    auto active = std::get<std::vector<int64_t>>(*c.get("active"));
    auto dead = std::get<std::vector<int64_t>>(*c.get("dead"));
    for (auto x : active)
      if (x != static_cast<int64_t>(m.meta().dst_node_id)) {
        dead.push_back(x);
        break;
      }
    c.insert_or_assign("dead", dead);
    asked.insert(m.meta().dst_node_id);
  };
  auto r = run(g, sa_opts());
  BOOST_TEST(asked.size() == 5u);
  auto& sa = *r.train_rounds[0].secure_aggregation;
  size_t refused = 0;
  for (auto& d : sa.dropped)
    refused += d.stage == stage_unmask && d.reason.find("both secrets") != std::string::npos;
  BOOST_TEST(refused == 5u);
  BOOST_TEST(r.train_rounds[0].results == 0u);  // nothing revealed, nothing unmasked
  BOOST_TEST((r.arrays == model()));
}

BOOST_AUTO_TEST_CASE(a_replayed_or_malformed_share_is_refused_and_the_node_goes_on) {
  harness h;
  test::scripted_grid inner{6, h.app()};
  tampering_grid g{inner};
  int round_seen = 0;
  g.tamper = [&](message& m) {
    if (stage_of(m) != stage_collect) return;
    round_seen = std::stoi(m.meta().group_id);
    if (round_seen != 1) return;
    auto& c = *m.content().get_as<config_record>(record_key);
    auto srcs = std::get<std::vector<int64_t>>(*c.get("sources"));
    auto boxes = std::get<std::vector<bytes>>(*c.get("ciphertexts"));
    if (m.meta().dst_node_id == 1) {  // the first share again: a replay
      srcs.push_back(srcs[0]), boxes.push_back(boxes[0]);
    } else if (m.meta().dst_node_id == 2) {  // one bit flipped
      boxes[0][20] ^= 1;
    } else {
      return;
    }
    c.insert_or_assign("sources", srcs);
    c.insert_or_assign("ciphertexts", boxes);
  };
  auto r = run(g, sa_opts(), 2);
  auto& first = *r.train_rounds[0].secure_aggregation;
  std::map<uint64_t, std::string> why;
  for (auto& d : first.dropped) why[d.node] = d.reason;
  BOOST_TEST(why[1].find("given twice (a replay)") != std::string::npos);
  BOOST_TEST(why[2].find("failed authentication") != std::string::npos);
  BOOST_TEST(r.train_rounds[0].results == 4u);
  // Round 2 is untouched: both nodes take part again.
  BOOST_TEST(r.train_rounds[1].results == 6u);
  BOOST_TEST(r.train_rounds[1].secure_aggregation->dropped.empty());
}

BOOST_AUTO_TEST_CASE(a_stage_out_of_order_is_refused_with_the_state_kept) {
  auto app = std::make_shared<client_app>(std::vector<mod>{secaggplus_mod});
  app->train(trainer());
  context ctx;
  ctx.node_id = 4;
  record_dict c;
  config_record cfg;
  cfg.insert_or_assign("stage", std::string(stage_unmask));
  cfg.insert_or_assign("round", int64_t{1});
  cfg.insert_or_assign("active", std::vector<int64_t>{4});
  cfg.insert_or_assign("dead", std::vector<int64_t>{});
  c.insert_or_assign(record_key, cfg);
  auto m = make_instruction(c, "train", 4, "1");
  auto reply = app->handle(*m, ctx);
  BOOST_REQUIRE(reply.has_error());
  BOOST_TEST(reply.error().code == error_code::mod_failed_precondition);
  BOOST_TEST(reply.error().reason.find("expected stage setup") != std::string::npos);
  // A train message without the record passes through to the handler.
  auto plain = make_instruction({}, "train", 4, "1");
  auto r2 = app->handle(*plain, ctx);
  BOOST_TEST(r2.has_content());
}

BOOST_AUTO_TEST_CASE(a_strategy_that_needs_each_update_is_refused) {
  fed_median s{avg_opts()};
  BOOST_CHECK_EXCEPTION(s.set_train_workflow(std::make_shared<secagg_plus_workflow>(sa_opts())),
                        std::invalid_argument, [](const std::invalid_argument& e) {
                          return std::string(e.what()).find("FedMedian") != std::string::npos;
                        });
}

BOOST_AUTO_TEST_SUITE_END()
