#include "actors/federation.hpp"
#include "actors/grid_actor.hpp"

#include <boost/test/unit_test.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/strategy/fed_avg.hpp"
#include "runtime/strategy/fed_avgm.hpp"
#include "runtime/report/result_json.hpp"
#include "tests/actors/arithmetic_app.hpp"

using namespace stamen;
using namespace stamen::test;

namespace {

struct fixture {
  explicit fixture(size_t compute_threads = 0, size_t scheduler_threads = 2)
      : rt(scheduler_threads) {
    federation_options o;
    o.compute_threads = compute_threads;
    o.log = logger::silent();
    fed = std::make_unique<federation>(*rt.sys, o);
  }

  void add(size_t n, std::function<std::shared_ptr<client_app>(int64_t)> make =
                         [](int64_t p) { return arithmetic_app(p); }) {
    for (size_t p = 0; p < n; ++p) {
      context ctx;
      ctx.node_config = {{"partition-id", static_cast<int64_t>(p)},
                         {"num-partitions", static_cast<int64_t>(n)}};
      fed->add_node(100 + p, make(static_cast<int64_t>(p)), ctx);
    }
    BOOST_REQUIRE(fed->wait_for_nodes(n) >= n);
  }

  expected<std::optional<strategy_result>> run(fed_avg_options o, int rounds, double timeout) {
    server_app srv;
    srv.main([&](grid& g, context&) {
      fed_avg s(o);
      s.start(g, initial_arrays(), rounds, timeout);
    });
    context ctx;
    ctx.run_id = 1;
    return fed->run(srv, ctx);
  }

  actor_runtime rt;
  std::unique_ptr<federation> fed;
};

fed_avg_options all_nodes() {
  fed_avg_options o;
  o.seed = 7;
  o.min_available_timeout_s = 5;
  return o;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(federation_suite)

BOOST_AUTO_TEST_CASE(fedavg_over_actors_matches_the_formula) {
  for (size_t n : {2u, 5u, 13u}) {
    fixture f;
    f.add(n);
    auto r = f.run(all_nodes(), 3, 10);
    BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? std::string{} : r.error().what));
    BOOST_REQUIRE(r->has_value());
    auto& res = **r;
    std::vector<int64_t> ps;
    for (size_t p = 0; p < n; ++p) ps.push_back(static_cast<int64_t>(p));
    check_arrays(res, expected_after(ps, 3));
    BOOST_TEST(res.train_rounds.size() == 3u);
    for (auto& tr : res.train_rounds) {
      BOOST_TEST(tr.results == n);
      BOOST_TEST(tr.failures == 0u);
    }
    // Context.state persisted: in round r every node reports calls == r.
    for (int round = 1; round <= 3; ++round)
      BOOST_TEST(std::get<double>(*res.train_metrics_clientapp.at(round).get("calls")) == round,
                 boost::test_tools::tolerance(1e-12));
    // eval_loss = sum p (p+1) / sum (p+1)
    double num = 0, den = 0;
    for (auto p : ps) num += p * (p + 1.0), den += p + 1.0;
    BOOST_TEST(std::get<double>(*res.evaluate_metrics_clientapp.at(1).get("eval_loss")) == num / den,
               boost::test_tools::tolerance(1e-12));
  }
}

BOOST_AUTO_TEST_CASE(fraction_samples_and_json_reports_rounds) {
  fixture f;
  f.add(10);
  auto o = all_nodes();
  o.fraction_train = 0.5;
  auto r = f.run(o, 2, 10);
  BOOST_REQUIRE(r.has_value());
  auto& res = **r;
  BOOST_TEST(res.train_rounds[0].sampled == 5u);
  BOOST_TEST(res.evaluate_rounds[0].sampled == 10u);
  auto json = to_json(res);
  BOOST_TEST(json.find("\"sampled\": 5") != std::string::npos, json);
  BOOST_TEST(json.find("\"eval_loss\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(failures_are_counted_and_excluded) {
  // Node 0 throws, node 1 replies with NaN, node 2 answers too late, the rest are fine.
  fixture f{/*compute_threads=*/4};
  auto late = std::make_shared<gate>();
  f.add(6, [late](int64_t p) -> std::shared_ptr<client_app> {
    if (p == 0) {
      auto app = std::make_shared<client_app>();
      app->train([](const message&, context&) -> message { throw std::runtime_error("boom"); });
      return app;
    }
    if (p == 1) {
      auto app = std::make_shared<client_app>();
      app->train([](const message& m, context&) {
        record_dict c;
        c.insert_or_assign("arrays", array_record{{"w", array::from_values(dtype::float32, {3},
            std::vector<float>{1, NAN, 3})}});
        c.insert_or_assign("metrics", metric_record{{"num-examples", int64_t{5}}});
        return make_reply(m, c);
      });
      return app;
    }
    if (p == 2) {
      // Replies only once the run is over: always late for its round.
      auto inner = arithmetic_app(p);
      auto app = std::make_shared<client_app>(std::vector<mod>{
          [late](const message& m, context& c, const handler& next) {
            late->pass();
            return next(m, c);
          }});
      app->train([inner](const message& m, context& c) { return inner->handle(m, c); });
      return app;
    }
    return arithmetic_app(p);
  });
  auto o = all_nodes();
  o.fraction_evaluate = 0;
  auto r = f.run(o, 1, 3.0);
  late->open();
  BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? std::string{} : r.error().what));
  auto& tr = (*r)->train_rounds.at(0);
  BOOST_TEST(tr.results == 3u);
  BOOST_TEST(tr.failures == 3u);
  std::string all;
  for (auto& x : tr.failure_reasons) all += x + "\n";
  BOOST_TEST(all.find("node 100: error 2: boom") != std::string::npos, all);
  BOOST_TEST(all.find("node 101: rejected: array 'w' holds NaN or Inf") != std::string::npos, all);
  BOOST_TEST(all.find("node 102: no reply within the timeout") != std::string::npos, all);
  check_arrays(**r, expected_after({3, 4, 5}, 1));
}

BOOST_AUTO_TEST_CASE(a_node_killed_mid_round_yields_node_unavailable) {
  fixture f{/*compute_threads=*/2};
  // Node 3 is killed while its handler is inside train (held there until the
  // run is over), so it never replies by itself.
  auto held = std::make_shared<gate>();
  f.add(4, [held](int64_t p) -> std::shared_ptr<client_app> {
    if (p != 3) return arithmetic_app(p);
    auto app = std::make_shared<client_app>();
    app->train([held](const message& m, context&) -> message {
      held->pass();
      return make_reply(m, {});
    });
    return app;
  });
  std::thread killer([&] {
    if (held->wait_arrivals(1)) f.fed->kill_node(103);
  });
  auto o = all_nodes();
  o.fraction_evaluate = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto r = f.run(o, 1, 30);
  killer.join();
  held->open();
  auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  BOOST_REQUIRE(r.has_value());
  auto& tr = (*r)->train_rounds.at(0);
  BOOST_TEST(tr.results == 3u);
  BOOST_TEST(tr.failures == 1u);
  BOOST_TEST(tr.failure_reasons.at(0).find("error 5: node 103 became unavailable") !=
                 std::string::npos, tr.failure_reasons.at(0));
  BOOST_TEST(took < 25.0);  // answered by the grid, not by the 30 s deadline
  check_arrays(**r, expected_after({0, 1, 2}, 1));
}

BOOST_AUTO_TEST_CASE(a_handler_that_never_returns_does_not_hold_the_others) {
  // One compute thread, and node 3's train never returns: its thread is
  // abandoned half a second past the round's deadline and replaced, so from
  // then on the other nodes train again; the run ends.
  actor_runtime rt{2};
  federation_options o;
  o.compute_threads = 1;
  o.stuck_grace = std::chrono::milliseconds(500);
  o.log = logger::silent();
  auto before = compute_pool::abandoned();
  auto never = std::make_shared<gate>();  // never opened
  federation fed{*rt.sys, o};
  for (int64_t p = 0; p < 4; ++p)
    fed.add_node(100 + static_cast<uint64_t>(p), arithmetic_app(p, p == 3 ? never : nullptr));
  BOOST_REQUIRE(fed.wait_for_nodes(4) >= 4);
  server_app srv;
  srv.main([](grid& g, context&) {
    auto opts = all_nodes();
    opts.fraction_evaluate = 0;
    fed_avg s(opts);
    s.start(g, initial_arrays(), 3, 3.0);
  });
  auto r = fed.run(srv, {});
  BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? std::string{} : r.error().what));
  BOOST_TEST(compute_pool::abandoned() == before + 1);
  // Rounds 1 and 2 depend on where node 3's job fell in the one queue;
  // round 3 starts after the replacement: every other node replies.
  auto& third = (*r)->train_rounds.at(2);
  BOOST_TEST(third.results == 3u);
  BOOST_TEST(third.failures == 1u);
  BOOST_TEST(third.failure_reasons.at(0).find("node 103: no reply within the timeout") !=
                 std::string::npos, third.failure_reasons.at(0));
}

BOOST_AUTO_TEST_CASE(configs_carry_the_server_round_and_evaluate_fn_sees_each_global_model) {
  // Each node echoes the server-round of its train and evaluate configs as a
  // metric; the server-side evaluate_fn reports the sum of the global arrays.
  fixture f;
  f.add(3, [](int64_t p) {
    auto inner = arithmetic_app(p);
    auto app = std::make_shared<client_app>();
    auto round_of = [](const message& m) {
      return config_int(*m.content().configs("config"), "server-round");
    };
    app->train([inner, round_of](const message& m, context& c) {
      auto reply = inner->handle(m, c);
      auto content = reply.content();
      content.insert_or_assign("metrics", metric_record{{"num-examples", int64_t{1}},
                                                        {"round-seen", round_of(m)}});
      return make_reply(m, content);
    });
    app->evaluate([round_of](const message& m, context&) {
      return make_reply(m, record_dict{{"metrics", metric_record{{"num-examples", int64_t{1}},
                                                                 {"round-seen", round_of(m)}}}});
    });
    return app;
  });
  server_app srv;
  std::optional<strategy_result> result;
  std::vector<int> evaluated_rounds;
  srv.main([&](grid& g, context&) {
    fed_avg s(all_nodes());
    result = s.start(g, initial_arrays(), 3, 30, {}, {},
                     [&](int round, const array_record& arrays) -> std::optional<metric_record> {
                       evaluated_rounds.push_back(round);
                       double sum = 0;
                       for (float x : arrays.get("w")->to_vector<float>()) sum += x;
                       return metric_record{{"w_sum", sum}};
                     });
  });
  BOOST_REQUIRE(f.fed->run(srv, {}).has_value());
  BOOST_REQUIRE(result.has_value());
  BOOST_TEST((evaluated_rounds == std::vector<int>{0, 1, 2, 3}));
  for (int round = 1; round <= 3; ++round) {
    auto seen = [&](const std::map<int, metric_record>& m) {
      double x = 0;
      metric_as_double(*m.at(round).get("round-seen"), x);
      return x;
    };
    BOOST_TEST(seen(result->train_metrics_clientapp) == round);
    BOOST_TEST(seen(result->evaluate_metrics_clientapp) == round);
  }
  // Round 0 is the initial model (0 + 1 + 2); after each round every weight
  // grows by the weighted mean of p + 1 with equal weights: (1 + 2 + 3) / 3.
  for (int round = 0; round <= 3; ++round) {
    double sum = 0;
    metric_as_double(*result->evaluate_metrics_serverapp.at(round).get("w_sum"), sum);
    BOOST_TEST(std::abs(sum - (3.0 + 3 * 2.0 * round)) < 1e-5, "round " << round << ": " << sum);
  }
  auto json = nlohmann::json::parse(to_json(*result));
  BOOST_TEST(json["rounds"][2]["server_evaluate"]["w_sum"].get<double>() == 21.0);
  BOOST_TEST(json["initial_server_evaluate"]["w_sum"].get<double>() == 3.0);
}

BOOST_AUTO_TEST_CASE(fedavgm_steps_with_server_momentum) {
  // Three nodes, three rounds. The reference follows Hsu et al. (2019) with
  // PyTorch's SGD convention, in double: the pseudo-gradient is
  // d = x - FedAvg(x); v = d in round 1, then v = beta v + d; x -= eta v.
  const double eta = 0.7, beta = 0.9;
  fixture f;
  f.add(3);
  fed_avgm_options o;
  static_cast<fed_avg_options&>(o) = all_nodes();
  o.fraction_evaluate = 0;
  o.server_learning_rate = eta;
  o.server_momentum = beta;
  server_app srv;
  std::optional<strategy_result> result;
  srv.main([&](grid& g, context&) {
    fed_avgm s(o);
    result = s.start(g, initial_arrays(), 3, 30);
  });
  BOOST_REQUIRE(f.fed->run(srv, {}).has_value());
  BOOST_REQUIRE(result.has_value());
  std::vector<double> x{0, 1, 2}, v(3, 0);
  for (int round = 1; round <= 3; ++round) {
    // Node p adds p + 1 with weight p + 1: FedAvg adds 14 / 6 to every weight.
    for (size_t i = 0; i < 3; ++i) {
      double fedavg = x[i] + (1.0 * 1 + 2.0 * 2 + 3.0 * 3) / (1 + 2 + 3);
      double d = x[i] - fedavg;
      v[i] = round == 1 ? d : beta * v[i] + d;
      x[i] -= eta * v[i];
    }
  }
  check_arrays(*result, x);
  for (auto& tr : result->train_rounds) BOOST_TEST(tr.results == 3u);
  // With the defaults (learning rate 1, no momentum) it is FedAvg.
  fed_avgm_options plain;
  static_cast<fed_avg_options&>(plain) = all_nodes();
  plain.fraction_evaluate = 0;
  srv.main([&](grid& g, context&) {
    fed_avgm s(plain);
    result = s.start(g, initial_arrays(), 3, 30);
  });
  BOOST_REQUIRE(f.fed->run(srv, {}).has_value());
  check_arrays(*result, expected_after({0, 1, 2}, 3));
}

BOOST_AUTO_TEST_CASE(too_few_nodes_fails_with_a_clear_message) {
  fixture f;
  f.add(2);
  auto o = all_nodes();
  o.min_available_nodes = 5;
  o.min_available_timeout_s = 0.2;
  auto r = f.run(o, 1, 10);
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().what.find("only 2 of the 5 nodes required by min_available_nodes") !=
                 std::string::npos, r.error().what);
}

BOOST_AUTO_TEST_CASE(push_pull_query_and_custom_action) {
  fixture f;
  f.add(3, [](int64_t p) {
    auto app = std::make_shared<client_app>();
    app->query("ping", [p](const message& m, context&) {
      return make_reply(m, record_dict{{"m", metric_record{{"p", p}}}});
    });
    return app;
  });
  server_app srv;
  std::vector<message> replies;
  srv.main([&](grid& g, context&) {
    std::vector<message> msgs;
    for (auto id : g.node_ids()) msgs.push_back(*g.create_message({}, "query.ping", id));
    msgs.push_back(*g.create_message({}, "query", 100));       // not registered
    msgs.push_back(*g.create_message({}, "query.ping", 999));  // no such node
    auto ids = g.push_messages(std::move(msgs));
    // Polls until every reply is in (a bound only against a hang).
    for (int i = 0; i < 12000 && replies.size() < ids.size(); ++i) {
      auto got = g.pull_messages(ids);
      replies.insert(replies.end(), got.begin(), got.end());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  BOOST_REQUIRE(f.fed->run(srv, {}).has_value());
  BOOST_REQUIRE(replies.size() == 5u);
  int ok = 0, unregistered = 0, unavailable = 0;
  for (auto& r : replies) {
    if (r.has_content()) ++ok;
    else if (r.error().code == error_code::client_app_raised) ++unregistered;
    else if (r.error().code == error_code::node_unavailable) ++unavailable;
  }
  BOOST_TEST(ok == 3);
  BOOST_TEST(unregistered == 1);
  BOOST_TEST(unavailable == 1);
}

// A second node under a taken id is stopped by the grid, and the first
// keeps its place (the second's leave does not take the id along). Each
// node's Context is built per message from the run-wide part its
// federation keeps once and the node's own node_config and state.
BOOST_AUTO_TEST_CASE(a_node_under_a_taken_id_is_stopped_and_the_first_keeps_its_place) {
  fixture f;
  auto app = [](int64_t tag) {
    auto a = std::make_shared<client_app>();
    a->query("ctx", [tag](const message& m, context& ctx) {
      auto* seen = ctx.state.metrics("calls");
      int64_t calls = seen ? std::get<int64_t>(*seen->get("n")) : 0;
      ctx.state.insert_or_assign("calls", metric_record{{"n", calls + 1}});
      return make_reply(m, record_dict{{"m", metric_record{
          {"tag", tag}, {"calls", calls + 1}, {"node", static_cast<int64_t>(ctx.node_id)},
          {"lr", config_double(ctx.run_config, "lr")},
          {"pid", config_int(ctx.node_config, "partition-id")},
          {"dir", static_cast<int64_t>(ctx.app_dir.size())}}}});
    });
    return a;
  };
  auto ctx_for = [](int64_t p) {
    context c;
    c.run_config = {{"lr", 0.25}};
    c.app_dir = "/apps/x";
    c.node_config = {{"partition-id", p}};
    return c;
  };
  f.fed->add_node(100, app(1), ctx_for(0));
  f.fed->add_node(101, app(1), ctx_for(1));
  BOOST_REQUIRE(f.fed->wait_for_nodes(2) == 2u);
  caf::scoped_actor self{*f.rt.sys};
  auto second = f.fed->add_node(100, app(2), ctx_for(7));
  self->monitor(second);
  caf::error why;
  self->receive([&](const caf::down_msg& dm) { why = dm.reason; });
  BOOST_TEST((why == caf::sec::invalid_argument), f.rt.sys->render(why));
  std::vector<message> replies;
  server_app srv;
  srv.main([&](grid& g, context&) {
    BOOST_TEST(g.wait_for_nodes(2, 1) == 2u);
    for (int round = 0; round < 2; ++round) {
      std::vector<message> msgs;
      for (uint64_t id : {100, 101}) msgs.push_back(*g.create_message({}, "query.ctx", id));
      for (auto& r : g.send_and_receive(std::move(msgs), 30)) replies.push_back(std::move(r));
    }
  });
  BOOST_REQUIRE(f.fed->run(srv, {}).has_value());
  BOOST_REQUIRE_EQUAL(replies.size(), 4u);
  for (auto& r : replies) {
    BOOST_REQUIRE(r.has_content());
    auto& m = *r.content().metrics("m");
    auto node = std::get<int64_t>(*m.get("node"));
    BOOST_TEST(std::get<int64_t>(*m.get("tag")) == 1);  // the first node 100, not the stopped one
    BOOST_TEST(std::get<int64_t>(*m.get("pid")) == node - 100);
    BOOST_TEST(std::get<double>(*m.get("lr")) == 0.25);
    BOOST_TEST(std::get<int64_t>(*m.get("dir")) == 7);
  }
  // The state came back with each reply: the second round saw the first's.
  BOOST_TEST(std::get<int64_t>(*replies[2].content().metrics("m")->get("calls")) == 2);
  BOOST_TEST(std::get<int64_t>(*replies[3].content().metrics("m")->get("calls")) == 2);
}

// A message that cannot be encoded (here: over the codec's size limit) is
// logged and left out of its batch, which then does not wait for it.
BOOST_AUTO_TEST_CASE(a_message_that_cannot_be_encoded_is_left_out_and_not_waited_for) {
  actor_runtime rt{2};
  federation_options o;
  o.log = logger::silent();
  o.codec.max_message_size = 64 << 10;
  federation fed{*rt.sys, o};
  for (uint64_t id : {100, 101, 102}) {
    auto app = std::make_shared<client_app>();
    app->query("ping", [](const message& m, context&) { return make_reply(m, {}); });
    fed.add_node(id, app);
  }
  BOOST_REQUIRE(fed.wait_for_nodes(3) == 3u);
  stream_report report;
  std::vector<message> sent;
  double took = 0;
  server_app srv;
  srv.main([&](grid& g, context&) {
    auto small = record_dict{{"a", array_record{{"x", array::from_values(dtype::float32, {4}, std::vector<float>(4, 1.f))}}}};
    auto big = record_dict{{"a", array_record{{"x", array::from_values(dtype::float32, {1 << 20}, std::vector<float>(1 << 20, 1.f))}}}};
    std::vector<message> msgs;
    msgs.push_back(*g.create_message(small, "query.ping", 100));
    msgs.push_back(*g.create_message(big, "query.ping", 102));
    msgs.push_back(*g.create_message(small, "query.ping", 101));
    struct counter : reply_sink {
      size_t n = 0;
      void on_reply(const message& r) override { n += r.has_content() ? 1 : 0; }
    } sink;
    auto t0 = std::chrono::steady_clock::now();
    report = g.send_and_stream(std::move(msgs), 120, sink);
    took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    BOOST_TEST(sink.n == 2u);
  });
  BOOST_REQUIRE(fed.run(srv, {}).has_value());
  BOOST_TEST(report.sent == 2u);
  BOOST_TEST(report.replied == 2u);
  BOOST_TEST(report.timed_out.empty());
  BOOST_TEST(took < 60.0);  // not held until the 120 s deadline
}

BOOST_AUTO_TEST_CASE(a_node_cannot_answer_for_an_instruction_sent_to_another) {
  // Over a network a reply's node id is its connection's: the grid takes a
  // reply only from the node its instruction went to.
  fixture f;
  f.add(2, [](int64_t p) {
    auto app = std::make_shared<client_app>();
    app->query([p](const message& m, context&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      return make_reply(m, record_dict{{"m", metric_record{{"p", p}}}});
    });
    return app;
  });
  server_app srv;
  std::vector<message> replies;
  srv.main([&](grid& g, context&) {
    auto ids = g.push_messages({*g.create_message({}, "query", 100)});
    auto forged = make_error_reply_to(ids[0], 101, {error_code::unknown, "forged by node 101"});
    forged.meta().message_id = "forged";
    caf::anon_send(f.fed->grid_handle(), reply_atom::value,
                   envelope{"forged", ids[0], 101, 0, *encode(forged), {}});
    for (int i = 0; i < 12000 && replies.empty(); ++i) {
      auto got = g.pull_messages(ids);
      replies.insert(replies.end(), got.begin(), got.end());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  BOOST_REQUIRE(f.fed->run(srv, {}).has_value());
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
  BOOST_REQUIRE(replies[0].has_content());
  BOOST_TEST(replies[0].meta().src_node_id == 100u);
  BOOST_TEST(std::get<int64_t>(*replies[0].content().metrics("m")->get("p")) == 0);
}

BOOST_AUTO_TEST_CASE(a_thousand_nodes_several_rounds) {
  fixture f;
  f.add(1000);
  auto r = f.run(all_nodes(), 3, 30);
  BOOST_REQUIRE(r.has_value());
  std::vector<int64_t> ps;
  for (int64_t p = 0; p < 1000; ++p) ps.push_back(p);
  check_arrays(**r, expected_after(ps, 3));
  for (auto& tr : (*r)->train_rounds) BOOST_TEST(tr.results == 1000u);
}

// A cluster link registers its many nodes behind one actor in one request:
// all or none, and the actor's death takes all of them, each instruction
// they owed answered once.
BOOST_AUTO_TEST_CASE(nodes_behind_one_actor_register_as_a_block_and_go_down_together) {
  actor_runtime rt{2};
  auto& sys = *rt.sys;
  auto grid = sys.spawn(grid_behavior, codec_options{}, logger::silent());
  // A stand-in for a link's proxy: takes instructions and never answers.
  auto proxy = sys.spawn([]() -> supernode_actor::behavior_type {
    return {[](instruct_atom, envelope&) {}, [](done_atom, envelope&, record_dict&) {}};
  });
  caf::scoped_actor self{sys};
  auto ask = [&](auto... xs) {
    bool out = false;
    self->request(grid, caf::infinite, xs...).receive([&](bool ok) { out = ok; }, [](caf::error&) {});
    return out;
  };
  auto count = [&] {
    size_t n = 0;
    self->request(grid, caf::infinite, nodes_atom::value)
        .receive([&](std::vector<uint64_t>& ids) { n = ids.size(); }, [](caf::error&) {});
    return n;
  };
  BOOST_TEST(ask(register_atom::value, std::vector<uint64_t>{100, 101, 102}, proxy));
  BOOST_TEST(count() == 3u);
  // A block with an id already taken is refused whole.
  BOOST_TEST(!ask(register_atom::value, std::vector<uint64_t>{103, 101}, proxy));
  BOOST_TEST(!ask(register_atom::value, std::vector<uint64_t>{104, 104}, proxy));
  BOOST_TEST(count() == 3u);
  // One instruction to each of two of them, their replies streamed to this
  // test, then the proxy dies: both are answered, and all three nodes are
  // gone (the grid erased them before it answered).
  auto me = caf::actor_cast<caf::actor>(self);
  auto sink = sys.spawn([me]() -> reply_stream_actor::behavior_type {
    return {
        [me](reply_atom, envelope& e) { caf::anon_send(me, reply_atom::value, std::move(e)); },
        [](duplicate_atom, envelope&) {},
        [](cancel_atom, uint64_t) {},
        [](await_atom) -> caf::result<uint64_t, std::vector<std::string>> {
          return {uint64_t{0}, std::vector<std::string>{}};
        },
        [](deadline_atom) {},
    };
  });
  std::vector<envelope> batch{envelope{"a", "", 100, 0, {}, {}}, envelope{"b", "", 102, 0, {}, {}}};
  self->send(grid, stream_atom::value, batch, sink);
  caf::anon_send_exit(proxy, caf::exit_reason::kill);
  std::vector<envelope> answered;
  bool hung = false;
  while (answered.size() < 2 && !hung)
    self->receive([&](reply_atom, envelope& e) { answered.push_back(std::move(e)); },
                  caf::after(std::chrono::seconds(60)) >> [&] { hung = true; });  // a bound against a hang
  BOOST_REQUIRE_EQUAL(answered.size(), 2u);
  for (auto& e : answered) {
    auto reply = decode(e.bytes, e.content, codec_options{});
    BOOST_REQUIRE(reply.has_value());
    BOOST_TEST(reply->has_error());
    BOOST_TEST(reply->error().code == error_code::node_unavailable);
  }
  BOOST_TEST(count() == 0u);
  caf::anon_send_exit(grid, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()
