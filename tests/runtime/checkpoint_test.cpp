// Checkpoints on their own: a run stopped after round 2 and resumed by a
// fresh strategy (as after a crash) ends with the same arrays, bit for bit,
// and the same history as a run never stopped — for each kind of state a
// strategy keeps (the sampling RNG, momentum, optimizer moments, the
// adaptive clipping norm and the noise RNG). A checkpoint that cannot be
// trusted is refused, naming the file.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>

#include "runtime/checkpoint.hpp"
#include "runtime/strategy/dp_clipping.hpp"
#include "runtime/strategy/fed_buff.hpp"
#include "runtime/strategy/fed_avgm.hpp"
#include "runtime/strategy/fed_opt.hpp"
#include "runtime/run_events.hpp"
#include "tests/support/scripted_grid.hpp"

namespace fs = std::filesystem;
using namespace stamen;

namespace {

constexpr size_t num_nodes = 6;
constexpr int rounds = 4;

// Node k moves each weight by a step that depends on k, the round and the
// weight, and reports k examples: every round's aggregate differs.
std::shared_ptr<const client_app> app() {
  auto a = std::make_shared<client_app>();
  a->train([](const message& msg, context& ctx) {
    auto round = config_int(*msg.content().configs("config"), "server-round");
    auto w = msg.content().arrays("arrays")->get("w")->to_vector<float>();
    for (size_t j = 0; j < w.size(); ++j)
      w[j] += static_cast<float>(0.1 * std::sin(0.7 * static_cast<double>(ctx.node_id) + 0.3 * round + j));
    record_dict reply;
    reply.insert_or_assign("arrays", array_record{{"w", array::from_values(dtype::float32, {5}, w)}});
    reply.insert_or_assign("metrics", metric_record{{"num-examples", static_cast<int64_t>(ctx.node_id)},
                                                    {"train_loss", 1.0 / round}});
    return make_reply(msg, std::move(reply));
  });
  a->evaluate([](const message& msg, context& ctx) {
    record_dict reply;
    reply.insert_or_assign("metrics", metric_record{{"eval_loss", 0.1 * static_cast<double>(ctx.node_id)},
                                                    {"num-examples", int64_t{1}}});
    return make_reply(msg, std::move(reply));
  });
  return a;
}

array_record initial() {
  return {{"w", array::from_values(dtype::float32, {5}, std::vector<float>{0.5f, -0.25f, 1, 2, -3})}};
}

fed_avg_options sampling() {
  fed_avg_options o;
  o.seed = 11;
  o.fraction_train = 0.5;  // three of six nodes a round, drawn from the RNG
  o.min_train_nodes = 2;
  return o;
}

using factory = std::function<std::unique_ptr<strategy>()>;

const std::vector<std::pair<std::string, factory>>& strategies() {
  static const std::vector<std::pair<std::string, factory>> all{
      {"FedAvg", [] { return std::make_unique<fed_avg>(sampling()); }},
      {"FedAvgM",
       [] {
         fed_avgm_options o;
         static_cast<fed_avg_options&>(o) = sampling();
         o.server_momentum = 0.9;
         return std::make_unique<fed_avgm>(o);
       }},
      {"FedAdam",
       [] {
         fed_adam_options o;
         static_cast<fed_avg_options&>(o) = sampling();
         return std::make_unique<fed_adam>(o);
       }},
      {"DP adaptive clipping",
       [] {
         dp_adaptive_clipping_options o;
         o.noise_multiplier = 0.5;
         o.initial_clipping_norm = 0.1;
         o.clipped_count_stddev = 1.0;
         o.seed = 5;
         return std::make_unique<dp_adaptive_clipping>(std::make_unique<fed_avg>(sampling()),
                                                       clipping_side::server, o);
       }},
  };
  return all;
}

// Requests a stop when round `at` starts: that round is cut short and not
// checkpointed, as if the process died in it.
struct stop_at : run_observer {
  int at;
  run_stop stop;
  int resumed_at = 0;
  explicit stop_at(int r) : at(r) {}
  void on_round_start(int round, int) override {
    if (round == at) stop.request();
  }
  void on_resumed(int next_round, int) override { resumed_at = next_round; }
  void on_version(const version_report& v, int) override {
    if (v.version == at) stop.request();
  }
};

bool same_bits(const array_record& a, const array_record& b) {
  auto* x = a.get("w");
  auto* y = b.get("w");
  return x && y && x->nbytes() == y->nbytes() && std::memcmp(x->data(), y->data(), x->nbytes()) == 0;
}

struct dir_fixture {
  fs::path dir;
  dir_fixture() {
    auto name = boost::unit_test::framework::current_test_case().p_name.get();
    dir = fs::temp_directory_path() / ("stamen-checkpoint-" + std::to_string(getpid())) / name;
    fs::remove_all(dir);
  }
  ~dir_fixture() { fs::remove_all(dir); }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(checkpoints, dir_fixture)

BOOST_AUTO_TEST_CASE(a_resumed_run_ends_bit_for_bit_as_one_never_stopped) {
  for (auto& [name, make] : strategies()) {
    auto where = dir / std::to_string(&name - &strategies()[0].first);
    // Never stopped, no checkpoints.
    test::scripted_grid plain_grid(num_nodes, app());
    auto whole = make()->start(plain_grid, initial(), rounds, 10);

    // Stopped as round 3 starts: the checkpoint after round 2 stands.
    checkpoint_store store{where, "test"};
    {
      stop_at observer{3};
      run_scope scope{observer, &observer.stop};
      checkpoint_scope saving{&store};
      test::scripted_grid grid(num_nodes, app());
      auto cut = make()->start(grid, initial(), rounds, 10);
      BOOST_TEST(cut.stopped, name);
    }
    BOOST_TEST(store.last_save_bytes() > 0u, name);

    // A fresh strategy and grid, as after a restart, resume at round 3.
    stop_at observer{0};
    run_scope scope{observer, &observer.stop};
    checkpoint_scope saving{&store};
    test::scripted_grid grid(num_nodes, app());
    auto resumed = make()->start(grid, initial(), rounds, 10);
    BOOST_TEST(observer.resumed_at == 3, name);
    BOOST_TEST(same_bits(resumed.arrays, whole.arrays), name << ": the final arrays differ");
    BOOST_TEST_REQUIRE(resumed.train_rounds.size() == static_cast<size_t>(rounds), name);
    for (int r = 0; r < rounds; ++r) {
      BOOST_TEST(resumed.train_rounds[r].round == whole.train_rounds[r].round, name);
      BOOST_TEST(resumed.train_rounds[r].results == whole.train_rounds[r].results, name);
    }
    BOOST_TEST(resumed.evaluate_metrics_clientapp.size() == whole.evaluate_metrics_clientapp.size(), name);
    BOOST_TEST((resumed.train_metrics_clientapp == whole.train_metrics_clientapp), name);
  }
}

BOOST_AUTO_TEST_CASE(the_wrong_or_a_damaged_checkpoint_is_refused_naming_the_file) {
  checkpoint_store store{dir, "run A"};
  {
    stop_at observer{3};
    run_scope scope{observer, &observer.stop};
    checkpoint_scope saving{&store};
    test::scripted_grid grid(num_nodes, app());
    fed_avg{sampling()}.start(grid, initial(), rounds, 10);
  }
  auto refused = [&](checkpoint_store& s, strategy& st, int n) -> std::string {
    checkpoint_scope saving{&s};
    test::scripted_grid grid(num_nodes, app());
    try {
      st.start(grid, initial(), n, 10);
    } catch (const run_error& e) {
      return e.what();
    }
    return {};
  };
  fed_avgm other{fed_avgm_options{}};
  auto why = refused(store, other, rounds);
  BOOST_TEST(why.find("was written by FedAvg, not FedAvgM") != std::string::npos, why);
  fed_avg same{sampling()};
  why = refused(store, same, rounds + 2);
  BOOST_TEST(why.find("is of a run of 4 rounds, not 6") != std::string::npos, why);
  checkpoint_store another{dir, "run B"};
  why = refused(another, same, rounds);
  BOOST_TEST(why.find("was written by another run") != std::string::npos, why);
  // Damaged: the file is named and nothing runs.
  {
    std::fstream f(store.file(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);
    f.write("\xff\xff\xff\xff\xff\xff\xff\xff", 8);
  }
  why = refused(store, same, rounds);
  BOOST_TEST(why.find(store.file().string()) != std::string::npos, why);
  { std::ofstream{store.file(), std::ios::trunc} << "not a checkpoint"; }
  why = refused(store, same, rounds);
  BOOST_TEST(why.find("is unreadable") != std::string::npos, why);
}

BOOST_AUTO_TEST_CASE(a_save_is_atomic_a_crash_leaves_the_last_whole_checkpoint) {
  checkpoint_store store{dir, "x"};
  record_dict one;
  one.insert_or_assign("checkpoint", config_record{{"round", int64_t{1}}});
  BOOST_REQUIRE(static_cast<bool>(store.save(one)));
  // A half-written temporary file (what a crash mid-save leaves) changes
  // nothing: the checkpoint is the last one renamed into place.
  { std::ofstream{dir / "checkpoint.bin.tmp"} << "half"; }
  auto back = store.load();
  BOOST_REQUIRE(back.has_value());
  BOOST_REQUIRE(back->has_value());
  BOOST_TEST(std::get<int64_t>(*(*back)->configs("checkpoint")->get("round")) == 1);
  BOOST_TEST(!fs::exists(dir / "nothing" / "checkpoint.bin"));
  checkpoint_store empty{dir / "nothing", "x"};
  auto none = empty.load();
  BOOST_TEST((none.has_value() && !none->has_value()));
}

// FedBuff resumes at the version after its checkpoint. What was in flight
// or buffered at the crash is trained anew, so the run after the resume is
// not the uninterrupted one (staleness differs); everything before it is.
BOOST_AUTO_TEST_CASE(an_asynchronous_run_resumes_at_the_version_after_its_checkpoint) {
  auto make = [] {
    fed_avg_options o;
    o.seed = 5;
    o.fraction_evaluate = 0;
    async_options a;
    a.concurrency = 3;
    a.num_server_updates = 6;
    a.evaluate_every = 0;
    return std::make_unique<fed_buff>(o, a, fed_buff_options{2, 0.8});
  };
  auto timed = [] {
    auto g = std::make_unique<test::scripted_grid>(num_nodes, app());
    g->duration = [](uint64_t k) { return 1.0 + 0.3 * static_cast<double>(k); };
    return g;
  };
  auto whole = make()->start(*timed(), initial(), 0, 10);
  checkpoint_store store{dir, "async"};
  {
    stop_at observer{3};  // stops as version 3 is made: version 2's checkpoint stands
    run_scope scope{observer, &observer.stop};
    checkpoint_scope saving{&store};
    auto cut = make()->start(*timed(), initial(), 0, 10);
    BOOST_TEST(cut.stopped);
  }
  stop_at observer{0};
  run_scope scope{observer, &observer.stop};
  checkpoint_scope saving{&store};
  auto resumed = make()->start(*timed(), initial(), 0, 10);
  BOOST_TEST(observer.resumed_at == 3);
  BOOST_REQUIRE_EQUAL(resumed.versions.size(), 6u);
  for (size_t v = 0; v < 6; ++v) BOOST_TEST(resumed.versions[v].version == static_cast<int>(v + 1));
  for (size_t v = 0; v < 2; ++v)
    BOOST_TEST((resumed.versions[v].staleness == whole.versions[v].staleness));
  // A round loop cannot take an asynchronous checkpoint, nor the reverse.
  checkpoint_scope again{&store};
  test::scripted_grid grid(num_nodes, app());
  BOOST_CHECK_EXCEPTION(fed_avg{sampling()}.start(grid, initial(), rounds, 10), run_error,
                        [](const run_error& e) { return std::string{e.what()}.find("has no 'round'") != std::string::npos; });
}

BOOST_AUTO_TEST_SUITE_END()
