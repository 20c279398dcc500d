// FedBuff and FedAsync on a grid in virtual time: node k answers after a
// fixed duration, so the arrival order is exact, and the global model after
// every version is checked against a reference computed here from the
// papers' rules, with the staleness of every update.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <functional>
#include <map>

#include "runtime/strategy/fed_buff.hpp"
#include "tests/support/scripted_grid.hpp"

using namespace stamen;

namespace {

using vec = std::vector<double>;

array_record to_record(const vec& w) {
  array_record r;
  r.insert_or_assign("w", array::from_values(dtype::float64, {static_cast<int64_t>(w.size())}, w));
  return r;
}

// Node k's training from global w at model version v.
vec trained(const vec& w, uint64_t k, int64_t v) {
  vec out = w;
  for (size_t j = 0; j < w.size(); ++j) out[j] += 0.1 * k * (j + 1) - 0.02 * v + 0.01 * j;
  return out;
}

std::shared_ptr<const client_app> app() {
  auto a = std::make_shared<client_app>();
  a->train([](const message& msg, context& ctx) {
    auto v = config_int(*msg.content().configs("config"), "model-version");
    auto w = msg.content().arrays("arrays")->get("w")->to_vector<double>();
    record_dict r;
    r.insert_or_assign("arrays", to_record(trained(w, ctx.node_id, v)));
    r.insert_or_assign("metrics", metric_record{{"num-examples", int64_t{10}}, {"train_loss", 0.5}});
    return make_reply(msg, r);
  });
  a->evaluate([](const message& msg, context&) {
    return make_reply(msg, record_dict{{"metrics", metric_record{{"num-examples", int64_t{1}}}}});
  });
  return a;
}

// Node k answers after durations[k - 1]: 1.0, 1.3, 1.7 never tie early on.
const std::vector<double> durations{1.0, 1.3, 1.7};

fed_avg_options base() {
  fed_avg_options o;
  o.seed = 5;
  o.fraction_evaluate = 0;
  return o;
}

async_options async_with(staleness_fn s, int updates) {
  async_options a;
  a.concurrency = 3;  // every node busy: the timeline is fixed
  a.num_server_updates = updates;
  a.staleness = s;
  a.evaluate_every = 0;
  return a;
}

// The arrivals of the reference: node, and the version it trained from,
// replayed in time order; `apply` takes each and says whether the version moved.
struct timeline {
  // (time, node) -> version the node trains from
  std::map<std::pair<double, uint64_t>, int64_t> due;
  vec global;
  int64_t version = 0;
  std::vector<std::vector<int64_t>> staleness_per_version{{}};

  explicit timeline(vec w0) : global(std::move(w0)) {
    for (uint64_t k = 1; k <= 3; ++k) due.emplace(std::pair{durations[k - 1], k}, 0);
  }

  void run(int versions, const std::function<bool(const vec& wk, const vec& base, int64_t tau)>& apply,
           std::map<int64_t, vec>& bases) {
    bases[0] = global;
    while (version < versions) {
      auto it = due.begin();
      auto [t, k] = it->first;
      int64_t from = it->second;
      due.erase(it);
      auto wk = trained(bases.at(from), k, from);
      int64_t tau = version - from;
      staleness_per_version.back().push_back(tau);
      if (apply(wk, bases.at(from), tau)) {
        ++version;
        bases[version] = global;
        staleness_per_version.emplace_back();
      }
      due.emplace(std::pair{t + durations[k - 1], k}, version);
    }
  }
};

void check_run(async_strategy& s, timeline& ref) {
  test::scripted_grid grid(3, app());
  grid.duration = [](uint64_t k) { return durations[k - 1]; };
  auto result = s.start(grid, to_record(vec{0.5, -0.5, 1.0}), 0, 10);
  BOOST_REQUIRE_EQUAL(result.versions.size(), static_cast<size_t>(ref.version));
  for (size_t i = 0; i < result.versions.size(); ++i) {
    BOOST_TEST(result.versions[i].version == static_cast<int>(i + 1));
    BOOST_TEST(result.versions[i].staleness == ref.staleness_per_version[i],
               boost::test_tools::per_element());
  }
  auto got = result.arrays.get("w")->to_vector<double>();
  for (size_t j = 0; j < got.size(); ++j)
    BOOST_TEST(got[j] == ref.global[j], boost::test_tools::tolerance(1e-9));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(async_strategies)

BOOST_AUTO_TEST_CASE(staleness_functions_follow_fedasync) {
  staleness_fn c;
  BOOST_TEST(c(7) == 1.0);
  staleness_fn p{staleness_fn::kind::polynomial, 0.5};
  BOOST_TEST(p(3) == 0.5, boost::test_tools::tolerance(1e-12));  // (1 + 3)^-0.5
  staleness_fn h{staleness_fn::kind::hinge, 0.5, 10, 4};
  BOOST_TEST(h(4) == 1.0);
  BOOST_TEST(h(6) == 1.0 / 21, boost::test_tools::tolerance(1e-12));  // 1 / (10 (6 - 4) + 1)
}

BOOST_AUTO_TEST_CASE(fedbuff_applies_the_staleness_weighted_mean_of_k_deltas) {
  for (auto s : {staleness_fn{}, staleness_fn{staleness_fn::kind::polynomial, 0.5},
                 staleness_fn{staleness_fn::kind::hinge, 0.5, 10, 1}}) {
    fed_buff strategy(base(), async_with(s, 6), {2, 0.8});
    timeline ref({0.5, -0.5, 1.0});
    std::map<int64_t, vec> bases;
    vec buffer(3, 0.0);
    int in_buffer = 0;
    ref.run(6, [&](const vec& wk, const vec& w0, int64_t tau) {
      for (size_t j = 0; j < 3; ++j) buffer[j] += s(tau) * (wk[j] - w0[j]);
      if (++in_buffer < 2) return false;
      for (size_t j = 0; j < 3; ++j) ref.global[j] += 0.8 * buffer[j] / 2;
      buffer.assign(3, 0.0);
      in_buffer = 0;
      return true;
    }, bases);
    BOOST_TEST_CONTEXT(s.describe()) { check_run(strategy, ref); }
  }
}

BOOST_AUTO_TEST_CASE(fedasync_mixes_every_update_in_at_once) {
  for (auto s : {staleness_fn{}, staleness_fn{staleness_fn::kind::polynomial, 0.5},
                 staleness_fn{staleness_fn::kind::hinge, 0.5, 10, 1}}) {
    fed_async strategy(base(), async_with(s, 7), {0.6});
    timeline ref({0.5, -0.5, 1.0});
    std::map<int64_t, vec> bases;
    ref.run(7, [&](const vec& wk, const vec&, int64_t tau) {
      double a = 0.6 * s(tau);
      for (size_t j = 0; j < 3; ++j) ref.global[j] = (1 - a) * ref.global[j] + a * wk[j];
      return true;
    }, bases);
    BOOST_TEST_CONTEXT(s.describe()) { check_run(strategy, ref); }
  }
}

BOOST_AUTO_TEST_CASE(max_staleness_refuses_exactly_the_stale_replies) {
  // Node 3 is 10.5 times slower: by its first reply the fast nodes moved the
  // model on by 10 + 8 = 18 versions (node 1 at 1..10, node 2 at 1.3..10.4).
  auto a = async_with(staleness_fn{}, 19);
  a.max_staleness = 8;
  fed_async strategy(base(), a, {0.5});
  test::scripted_grid grid(3, app());
  grid.duration = [](uint64_t k) { return k == 3 ? 10.5 : (k == 1 ? 1.0 : 1.3); };
  auto result = strategy.start(grid, to_record(vec{0, 0, 0}), 0, 100);
  size_t refused = 0;
  for (auto& v : result.versions) {
    refused += v.failures;
    for (auto tau : v.staleness) BOOST_TEST(tau <= 8);
    for (auto& why : v.failure_reasons) BOOST_TEST(why == "node 3: stale: τ = 18 > 8");
  }
  BOOST_TEST(refused == 1u);
}

BOOST_AUTO_TEST_CASE(error_replies_are_failures_and_their_slot_is_refilled) {
  // Node 2 fails every training; with sampling = random the slot goes on.
  auto a = std::make_shared<client_app>();
  auto good = app();
  a->train([good](const message& msg, context& ctx) -> message {
    if (ctx.node_id == 2) throw std::runtime_error("out of memory");
    return good->handle(msg, ctx);
  });
  auto async = async_with(staleness_fn{}, 4);
  async.concurrency = 2;
  async.sampling = async_options::sampling_policy::random;
  fed_async strategy(base(), async, {0.5});
  test::scripted_grid grid(3, a);
  auto result = strategy.start(grid, to_record(vec{0, 0, 0}), 0, 10);
  BOOST_REQUIRE_EQUAL(result.versions.size(), 4u);
  size_t failures = 0;
  for (auto& v : result.versions) {
    failures += v.failures;
    for (auto& why : v.failure_reasons) BOOST_TEST(why.find("node 2: error 2") == 0, why);
  }
  // Every instruction sent got exactly one answer that was taken or refused.
  size_t applied = 0;
  for (auto& v : result.versions) applied += v.applied();
  BOOST_TEST(applied == 4u);
  BOOST_TEST(grid.sent().size() >= applied + failures);
}

BOOST_AUTO_TEST_SUITE_END()
