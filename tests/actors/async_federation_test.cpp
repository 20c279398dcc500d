// FedBuff and FedAsync on real node actors through the in-process grid's
// open stream: nodes crash and restart while trainings are in flight, and no
// slot is lost and nothing is applied twice.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include <nlohmann/json.hpp>

#include "actors/federation.hpp"
#include "runtime/report/result_json.hpp"
#include "runtime/strategy/fed_buff.hpp"
#include "tests/actors/arithmetic_app.hpp"

using namespace stamen;
using namespace stamen::test;

namespace {

struct outcome {
  expected<std::optional<strategy_result>> result = fail(errc::none, "");
  std::vector<fault_event> events;
};

constexpr size_t num_nodes = 6;

template <class Strategy>
outcome run(std::function<std::unique_ptr<Strategy>()> make, fault_plan plan) {
  actor_runtime rt{2};
  std::unordered_map<uint64_t, int64_t> index;
  for (size_t p = 0; p < num_nodes; ++p) index.emplace(100 + p, static_cast<int64_t>(p));
  federation_options o;
  o.log = logger::silent();
  o.faults = std::make_shared<fault_injector>(std::move(plan), index, num_nodes);
  outcome out;
  federation fed{*rt.sys, o};
  for (size_t p = 0; p < num_nodes; ++p) fed.add_node(100 + p, arithmetic_app(static_cast<int64_t>(p)));
  fed.wait_for_nodes(num_nodes);
  server_app srv;
  srv.main([&](grid& g, context&) { make()->start(g, initial_arrays(), 0, 30); });
  out.result = fed.run(srv, {});
  out.events = o.faults->events();
  return out;
}

fed_avg_options quiet() {
  fed_avg_options o;
  o.seed = 3;
  o.fraction_evaluate = 0;
  o.min_available_timeout_s = 10;
  return o;
}

async_options three_at_once(int updates) {
  async_options a;
  a.concurrency = 3;
  a.num_server_updates = updates;
  a.evaluate_every = 0;
  return a;
}

fault_rule rule(fault_action a, std::vector<int64_t> nodes, std::vector<int64_t> versions) {
  fault_rule r;
  r.action = a;
  r.nodes = std::move(nodes);
  r.rounds = std::move(versions);  // an asynchronous instruction's group is its version
  return r;
}

const strategy_result& ok(const outcome& o) {
  BOOST_REQUIRE_MESSAGE(o.result.has_value(), (o.result ? std::string{} : o.result.error().what));
  BOOST_REQUIRE(o.result->has_value());
  return **o.result;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(async_federation)

BOOST_AUTO_TEST_CASE(fedasync_keeps_every_slot_busy_through_crashes_and_restarts) {
  // The node given a version-2 instruction restarts, node 4 crashes for
  // good at its version-5 one (if sampled then), and the reply to a
  // version-7 instruction arrives twice. Nodes are drawn at random, so the
  // rules for versions 2 and 7 hit whichever node got them.
  auto restart = rule(fault_action::restart, {}, {2});
  restart.all = true;
  restart.delay_ms = 50;
  auto crash = rule(fault_action::crash, {4}, {5});
  auto dup = rule(fault_action::duplicate, {}, {7});
  dup.all = true;
  fault_plan plan;
  plan.seed = 7;
  plan.rules = {restart, crash, dup};
  auto o = run<fed_async>([] { return std::make_unique<fed_async>(quiet(), three_at_once(24)); },
                          plan);
  auto& r = ok(o);
  BOOST_REQUIRE_EQUAL(r.versions.size(), 24u);
  size_t failures = 0;
  std::string reasons;
  for (auto& v : r.versions) {
    for (auto& why : v.failure_reasons) reasons += why + "\n";
    // One update, one version: the duplicate was not applied again.
    BOOST_TEST(v.applied() == 1u);
    // Five nodes at least stay alive for three slots: none is ever lost.
    BOOST_TEST(v.in_flight_min == 3u, "version " << v.version << ": " << v.in_flight_min);
    failures += v.failures;
  }
  // Each injected crash cost exactly the training in flight on that node,
  // and each second copy of a reply is one failure more, named as such.
  size_t crashes = 0, copies = 0, named = 0;
  for (auto& e : o.events) {
    crashes += e.action == fault_action::restart || e.action == fault_action::crash;
    if (e.action == fault_action::duplicate) {
      ++copies;
      named += reasons.find("node " + std::to_string(e.node_id) + ": duplicate reply") != std::string::npos;
    }
  }
  BOOST_TEST(crashes >= 1u);
  BOOST_TEST(copies >= 1u);
  BOOST_TEST(named == copies, reasons);
  BOOST_TEST(failures == crashes + copies, reasons);
  auto w = r.arrays.get("w")->to_vector<float>();
  for (auto x : w) BOOST_TEST(std::isfinite(x));
}

BOOST_AUTO_TEST_CASE(updates_left_in_a_partial_buffer_at_the_end_are_reported) {
  // A buffer of 10^9 never fills in a fifth of a second: every update
  // taken is left in it when the run's time is up, none applied, all reported.
  auto a = three_at_once(10);
  a.max_seconds = 0.2;
  fed_buff_options b;
  b.buffer_size = 1000000000;
  auto o = run<fed_buff>([&] { return std::make_unique<fed_buff>(quiet(), a, b); }, {});
  auto& r = ok(o);
  BOOST_TEST(r.versions.empty());
  BOOST_TEST(r.unapplied.applied() > 0u);
  BOOST_TEST(r.unapplied.failures == 0u);
  BOOST_TEST((r.arrays == initial_arrays()));  // nothing applied
  auto doc = nlohmann::json::parse(to_json(r));
  BOOST_TEST(doc["unapplied"]["updates"].get<size_t>() == r.unapplied.applied());
}

BOOST_AUTO_TEST_CASE(fedbuff_moves_by_the_mean_of_k_updates) {
  // The arithmetic app adds p + 1 to every weight: with a constant staleness
  // function and server learning rate 1, each version adds the mean of the
  // K updates it took, between 1 and 6.
  auto a = three_at_once(5);
  fed_buff_options b;
  b.buffer_size = 4;
  auto o = run<fed_buff>([&] { return std::make_unique<fed_buff>(quiet(), a, b); }, {});
  auto& r = ok(o);
  BOOST_REQUIRE_EQUAL(r.versions.size(), 5u);
  for (auto& v : r.versions) {
    BOOST_TEST(v.applied() == 4u);
    BOOST_TEST(v.failures == 0u);
  }
  auto w = r.arrays.get("w")->to_vector<float>();
  BOOST_TEST(w[0] >= 5.0f);
  BOOST_TEST(w[0] <= 30.0f);
  BOOST_TEST(w[1] - w[0] == 1.0f, boost::test_tools::tolerance(1e-5f));
}

BOOST_AUTO_TEST_SUITE_END()
