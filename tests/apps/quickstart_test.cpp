// End to end: the real `stamen` binary runs the quickstart app on a slice of
// real Fashion-MNIST, and the command-line contract holds.
#include <torch/torch.h>
#include <zlib.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/data/loaders.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/shell.hpp"

namespace fs = std::filesystem;

namespace {

using stamen::test::outcome;
using stamen::test::slurp;

struct workspace {
  workspace() {
    dir = fs::temp_directory_path() / ("stamen-e2e-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "data");
    fs::create_directories(dir / "app");
  }
  ~workspace() { fs::remove_all(dir); }

  outcome stamen(const std::string& args) {
    return ::stamen::test::shell(std::string{STAMEN_BIN} + " " + args, dir);
  }

  void write_app(const std::string& extra_config = "", int num_supernodes = 3) {
    std::ofstream(dir / "app" / "stamen.toml") << R"([app]
name = "quickstart-e2e"
library = "stamen_app_quickstart"

[app.config]
num-server-rounds = 1
fraction-train = 1.0
fraction-evaluate = 1.0
local-epochs = 2
lr = 0.01
batch-size = 32
dataset = "fashion-mnist"
data-dir = ")" + (dir / "data").string() + R"("
partitioner = "iid"
seed = 42
final-model = ")" + (dir / "final.pt").string() + R"("
)" + extra_config + R"(
[federations]
default = "three"

[federations.three]
options.num-supernodes = )" + std::to_string(num_supernodes) + R"(
)";
  }

  fs::path dir;
};

void be32(std::ostream& out, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) out.put(static_cast<char>(x >> s));
}

// Writes the first `n` training images of the real data set as plain IDX files.
void write_slice(const fs::path& to, size_t n) {
  auto ds = stamen::data::load_mnist_dir(stamen::data::default_fashion_mnist_dir);
  BOOST_REQUIRE_MESSAGE(ds.has_value(), (ds ? std::string{} : ds.error().what));
  std::ofstream img(to / "train-images-idx3-ubyte", std::ios::binary);
  be32(img, 0x803);
  be32(img, static_cast<uint32_t>(n));
  be32(img, 28);
  be32(img, 28);
  img.write(reinterpret_cast<const char*>(ds->pixels.data()), static_cast<std::streamsize>(n * 784));
  std::ofstream lab(to / "train-labels-idx1-ubyte", std::ios::binary);
  be32(lab, 0x801);
  be32(lab, static_cast<uint32_t>(n));
  lab.write(reinterpret_cast<const char*>(ds->labels.data()), static_cast<std::streamsize>(n));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(quickstart_suite)

BOOST_AUTO_TEST_CASE(trains_on_real_fashion_mnist_and_saves_a_loadable_model) {
  workspace ws;
  write_slice(ws.dir / "data", 3000);
  ws.write_app();
  auto r = ws.stamen("run " + (ws.dir / "app").string() +
                     " --run-config \"num-server-rounds=2\" --format json");
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  BOOST_TEST(r.err.find("configure_train: Sampled 3 nodes (out of 3)") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("aggregate_train: Received 3 results and 0 failures") != std::string::npos);
  BOOST_TEST(r.err.find("[ROUND 2/2]") != std::string::npos);
  BOOST_TEST(r.err.find("Saving final model to disk...") != std::string::npos);

  auto doc = nlohmann::json::parse(r.out);
  auto& rounds = doc.at("rounds");
  BOOST_REQUIRE(rounds.size() == 2u);
  double loss1 = rounds[0]["evaluate"]["metrics"]["eval_loss"];
  double loss2 = rounds[1]["evaluate"]["metrics"]["eval_loss"];
  double acc2 = rounds[1]["evaluate"]["metrics"]["eval_acc"];
  double tloss1 = rounds[0]["train"]["metrics"]["train_loss"];
  double tloss2 = rounds[1]["train"]["metrics"]["train_loss"];
  BOOST_TEST(loss2 < loss1);
  BOOST_TEST(tloss2 < tloss1);
  BOOST_TEST(acc2 > 0.3);  // chance is 0.1

  // final.pt reloads in C++ into the tutorial's Net shapes.
  std::ifstream in(ws.dir / "final.pt", std::ios::binary);
  BOOST_REQUIRE(in.good());
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto dict = torch::pickle_load(bytes).toGenericDict();
  BOOST_TEST(dict.size() == 10u);
  BOOST_TEST((dict.at("conv1.weight").toTensor().sizes() == torch::IntArrayRef{6, 1, 5, 5}));
  BOOST_TEST((dict.at("fc1.weight").toTensor().sizes() == torch::IntArrayRef{120, 256}));
  BOOST_TEST((dict.at("fc3.bias").toTensor().sizes() == torch::IntArrayRef{10}));

  // If Debian's python3-torch is there, the model loads into PyTorch's Net too.
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0) {
    auto check = std::string{"/usr/bin/python3 "} + STAMEN_SOURCE_DIR +
                 "/apps/quickstart/load_final_model.py " + (ws.dir / "final.pt").string();
    BOOST_TEST(std::system(check.c_str()) == 0);
  } else {
    BOOST_TEST_MESSAGE("python3-torch not installed: skipped loading final.pt in PyTorch");
  }
}

// Each strategy name the quickstart accepts runs it end to end, under the
// class the name stands for, with every train reply aggregated.
BOOST_AUTO_TEST_CASE(every_strategy_runs_the_quickstart_end_to_end) {
  workspace ws;
  write_slice(ws.dir / "data", 1500);
  ws.write_app("strategy = \"fedavg\"\nconcurrency = 5\nbuffer-size = 3\nnum-server-updates = 10\n"
               "local-dp-epsilon = { optional = true, min = 0.0, exclusive-min = true }\n");
  std::vector<std::pair<std::string, std::string>> names{
      {"fedavg", "FedAvg"}, {"fedavgm", "FedAvgM"}, {"fedprox", "FedProx"},
      {"fedadagrad", "FedAdagrad"}, {"fedadam", "FedAdam"}, {"fedyogi", "FedYogi"},
      {"qfedavg", "QFedAvg"}, {"fedmedian", "FedMedian"}, {"fedtrimmedavg", "FedTrimmedAvg"},
      {"krum", "Krum"}, {"multikrum", "MultiKrum"}, {"bulyan", "Bulyan"},
      {"dp-server-fixed", "DifferentialPrivacyServerSideFixedClipping"},
      {"dp-server-adaptive", "DifferentialPrivacyServerSideAdaptiveClipping"},
      {"dp-client-fixed", "DifferentialPrivacyClientSideFixedClipping"},
      {"dp-client-adaptive", "DifferentialPrivacyClientSideAdaptiveClipping"},
      {"fedbuff", "FedBuff"}, {"fedasync", "FedAsync"}};
  for (auto& [name, cls] : names) {
    auto r = ws.stamen("run " + (ws.dir / "app").string() +
                       " --format json --run-config \"local-epochs=1 strategy='" + name +
                       "' concurrency=2 buffer-size=2 num-server-updates=2\"");
    BOOST_REQUIRE_MESSAGE(r.code == 0, name << ": " << r.err);
    BOOST_TEST(r.err.find("Starting " + cls + " strategy:") != std::string::npos, name);
    auto doc = nlohmann::json::parse(r.out);
    if (doc.contains("versions")) {  // asynchronous: versions, no rounds
      BOOST_TEST(doc.at("versions").size() == 2u, name);
      for (auto& v : doc.at("versions")) BOOST_TEST(v.at("failures").get<int>() == 0, name);
      BOOST_TEST(doc.at("versions").back().at("evaluate").at("results").get<int>() == 3, name);
      continue;
    }
    auto& train = doc.at("rounds").at(0).at("train");
    BOOST_TEST(train.at("results").get<int>() == 3, name << ": " << train.dump());
    BOOST_TEST(train.at("failures").get<int>() == 0, name << ": " << train.dump());
    BOOST_TEST(r.err.find("keeping the previous global arrays") == std::string::npos, name);
  }
  // LocalDpMod on the nodes: the same run, noised, evaluates differently.
  auto loss_with = [&](const std::string& extra) {
    auto r = ws.stamen("run " + (ws.dir / "app").string() +
                       " --format json --run-config \"local-epochs=1 " + extra + "\"");
    BOOST_REQUIRE_MESSAGE(r.code == 0, extra << ": " << r.err);
    return nlohmann::json::parse(r.out).at("rounds").at(0).at("evaluate").at("metrics").at("eval_loss").get<double>();
  };
  BOOST_TEST(loss_with("local-dp-epsilon=0.5") != loss_with(""));
}

// Three of ten nodes send their update reversed and scaled by 5 in every
// round: FedAvg falls to chance, the robust rules keep learning. Measured on
// this 6000-image slice: FedAvg 0.105; FedMedian 0.71, FedTrimmedAvg 0.73,
// Krum 0.70, Bulyan 0.75 (chance 0.1); the bounds leave 0.2 for noise.
BOOST_AUTO_TEST_CASE(robust_strategies_survive_sign_flipping_nodes_that_break_fedavg) {
  workspace ws;
  write_slice(ws.dir / "data", 6000);
  ws.write_app("strategy = \"fedavg\"\ntrimmed-beta = 0.2\nnum-malicious-nodes = 0\n", 10);
  std::ofstream(ws.dir / "byzantine.toml") << R"([faults]
seed = 7
[[faults.rule]]
action = "poison"
how = "sign-flip"
factor = 5.0
nodes = [1, 4, 7]
rounds = "every"
)";
  auto final_acc = [&](const std::string& run_config) {
    auto r = ws.stamen("run " + (ws.dir / "app").string() + " --format json --faults " +
                       (ws.dir / "byzantine.toml").string() +
                       " --run-config \"num-server-rounds=3 local-epochs=2 " + run_config + "\"");
    BOOST_REQUIRE_MESSAGE(r.code == 0, run_config << ": " << r.err);
    auto doc = nlohmann::json::parse(r.out);
    BOOST_TEST(doc.at("faults").size() == 9u);  // 3 nodes x 3 rounds, all logged
    double acc = doc.at("rounds").back()["evaluate"]["metrics"]["eval_acc"];
    BOOST_TEST_MESSAGE(run_config << ": final eval_acc " << acc);
    return acc;
  };
  BOOST_TEST(final_acc("strategy='fedavg'") < 0.2);
  BOOST_TEST(final_acc("strategy='fedmedian'") > 0.5);
  BOOST_TEST(final_acc("strategy='fedtrimmedavg' trimmed-beta=0.3") > 0.5);
  BOOST_TEST(final_acc("strategy='krum' num-malicious-nodes=3") > 0.5);
  BOOST_TEST(final_acc("strategy='bulyan' num-malicious-nodes=1") > 0.5);
}

BOOST_AUTO_TEST_CASE(command_line_errors_are_clear_and_non_zero) {
  workspace ws;
  ws.write_app();
  auto app = (ws.dir / "app").string();

  auto unknown = ws.stamen("run " + app + " --run-config \"num-server-rounds=5 bogus=1\"");
  BOOST_TEST(unknown.code == 2);
  BOOST_TEST(unknown.err.find("unknown run config key 'bogus'") != std::string::npos, unknown.err);

  auto type = ws.stamen("run " + app + " --run-config \"lr=fast\"");
  BOOST_TEST(type.code == 2);
  BOOST_TEST(type.err.find("run config key 'lr' expects a float, got a string") != std::string::npos,
             type.err);

  auto missing = ws.stamen("run " + (ws.dir / "nope").string());
  BOOST_TEST(missing.code == 2);
  BOOST_TEST(missing.err.find("does not exist") != std::string::npos, missing.err);

  auto fed = ws.stamen("run " + app + " --federation nope");
  BOOST_TEST(fed.code == 2);
  BOOST_TEST(fed.err.find("unknown federation 'nope' (known: three)") != std::string::npos, fed.err);

  std::ofstream(ws.dir / "over.toml") << "num-server-rounds = 2\nextra = true\n";
  auto file = ws.stamen("run " + app + " --run-config " + (ws.dir / "over.toml").string());
  BOOST_TEST(file.code == 2);
  BOOST_TEST(file.err.find("unknown run config key 'extra'") != std::string::npos, file.err);

  std::ofstream(ws.dir / "app" / "stamen.toml", std::ios::app) << "\n[federations.three.options]\nbad = \n";
  auto toml = ws.stamen("run " + app);
  BOOST_TEST(toml.code == 2);
  BOOST_TEST(toml.err.find("stamen.toml") != std::string::npos, toml.err);

  // A data directory without the data set fails the run, naming the file;
  // the summary and the JSON (every failure with its reason) still come out.
  ws.write_app();
  auto nodata = ws.stamen("run " + app + " --format json");
  BOOST_TEST(nodata.code == 1);
  BOOST_TEST(nodata.err.find("train-images-idx3-ubyte") != std::string::npos, nodata.err);
  BOOST_TEST(nodata.err.find("Final results:") != std::string::npos, nodata.err);
  auto doc = nlohmann::json::parse(nodata.out);
  BOOST_TEST(doc["error"].get<std::string>().find("every train reply of the run failed") !=
             std::string::npos);
  BOOST_REQUIRE(doc["rounds"].size() == 1u);
  BOOST_TEST(doc["rounds"][0]["train"]["failures"].get<int>() == 3);
  BOOST_TEST(doc["rounds"][0]["train"]["failure_reasons"][0].get<std::string>().find(
                 "train-images-idx3-ubyte") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(values_outside_their_domain_are_refused_before_anything_starts) {
  // The real quickstart declares a domain for every key: batch-size=0 once
  // made every node loop forever.
  workspace ws;
  auto app = std::string{STAMEN_SOURCE_DIR} + "/apps/quickstart";
  auto zero = ws.stamen("run " + app + " --run-config batch-size=0");
  BOOST_TEST(zero.code == 2);
  BOOST_TEST(zero.err.find("run config key 'batch-size' = 0 is out of its domain: >= 1") !=
                 std::string::npos, zero.err);
  BOOST_TEST(zero.err.find("Starting") == std::string::npos, zero.err);  // nothing started
  auto lr = ws.stamen("run " + app + " --run-config lr=-0.1");
  BOOST_TEST(lr.code == 2);
  BOOST_TEST(lr.err.find("'lr' = -0.1 is out of its domain: > 0") != std::string::npos, lr.err);
  auto dataset = ws.stamen("run " + app + " --run-config dataset=imagenet");
  BOOST_TEST(dataset.code == 2);
  BOOST_TEST(dataset.err.find("one of 'fashion-mnist', 'mnist', 'cifar10'") != std::string::npos,
             dataset.err);
  auto faults = ws.stamen("run " + app + " --federation-config num-supernodes=3 --faults " + app +
                          "/faults/kill-3-in-round-2.toml");
  BOOST_TEST(faults.code == 2);
  BOOST_TEST(faults.err.find("names node 5, but federation 'local-simulation' has 3 SuperNodes") !=
                 std::string::npos, faults.err);

  // A strategy's parameters, alone and against the federation's size.
  auto refused = [&](const std::string& run_config, const std::string& needle) {
    auto r = ws.stamen("run " + app + " --run-config \"" + run_config + "\"");
    BOOST_TEST(r.code == 2, run_config);
    BOOST_TEST(r.err.find(needle) != std::string::npos, r.err);
    BOOST_TEST(r.err.find("Starting") == std::string::npos, r.err);
  };
  refused("strategy='fedsgd'", "'strategy' = 'fedsgd' is out of its domain: one of 'fedavg'");
  refused("strategy='fedtrimmedavg' trimmed-beta=-0.1", "'trimmed-beta' = -0.1 is out of its domain");
  refused("strategy='fedadam' eta=0", "'eta' = 0 is out of its domain: > 0");
  refused("strategy='krum' num-malicious-nodes=2",
          "run config key 'num-malicious-nodes' = 2 is too large for krum with 5 nodes sampled per "
          "round (10 SuperNodes, fraction-train 0.5): Krum needs n >= 2f + 3");
  refused("strategy='bulyan' fraction-train=1.0 num-malicious-nodes=2",
          "Bulyan needs n >= 4f + 3");
  refused("strategy='dp-server-adaptive' noise-multiplier=0.5",
          "run config key 'noise-multiplier' = 0.5 must be below 2 * clipped-count-stddev = 0.5");
  // Secure aggregation: a strategy that needs each update, a threshold above
  // the sampled nodes, a value outside its domain.
  refused("secure-aggregation='secaggplus' strategy='fedmedian'",
          "cannot serve strategy 'fedmedian': it needs each node's own update");
  refused("secure-aggregation='secaggplus' num-shares=7 reconstruction-threshold=6",
          "reconstruction-threshold 6 is larger than the 5 shares of the 5 sampled nodes");
  refused("secure-aggregation='secaggplus' modulus-range=5000000",
          "modulus-range must be a power of 2");
  refused("secure-aggregation='secaggplus' num-shares=2", "num-shares as an integer must be greater than 2");
}

// SecAgg+ on the quickstart: the same run, securely aggregated, reaches the
// plain run's accuracy (within 2 points after 3 rounds), and reports each
// round's survivors and bytes; a node crashed after key sharing is recovered.
BOOST_AUTO_TEST_CASE(secure_aggregation_reaches_the_plain_runs_accuracy) {
  workspace ws;
  write_slice(ws.dir / "data", 3000);
  ws.write_app("secure-aggregation = \"none\"\n", 5);
  auto run = [&](const std::string& extra) {
    auto r = ws.stamen("run " + (ws.dir / "app").string() +
                       " --format json --run-config \"num-server-rounds=3 local-epochs=1 " + extra + "\"");
    BOOST_REQUIRE_MESSAGE(r.code == 0, extra << ": " << r.err);
    return std::pair{nlohmann::json::parse(r.out), r.err};
  };
  auto [plain, plain_log] = run("");
  auto [secure, secure_log] = run("secure-aggregation='secaggplus'");
  double a = plain.at("rounds").at(2).at("evaluate").at("metrics").at("eval_acc").get<double>();
  double b = secure.at("rounds").at(2).at("evaluate").at("metrics").at("eval_acc").get<double>();
  BOOST_TEST_MESSAGE("eval_acc after 3 rounds: plain " << a << ", SecAgg+ " << b);
  BOOST_TEST(std::abs(a - b) <= 0.02);
  BOOST_TEST(b > 0.5);
  for (auto& round : secure.at("rounds")) {
    auto& train = round.at("train");
    BOOST_TEST(train.at("results").get<int>() == 5);
    auto& sa = train.at("secure_aggregation");
    BOOST_TEST(sa.at("survivors").size() == 5u);
    BOOST_TEST(sa.at("num_shares").get<int>() == 3);
    BOOST_TEST(sa.at("bytes").size() == 4u);
    // collect-masked-vectors sends the model and gets 32-bit masked words back.
    BOOST_TEST(sa.at("bytes").at(2).at("received").get<uint64_t>() >= 5u * 4 * 44426);
  }
  BOOST_TEST(secure_log.find("secure aggregation (SecAgg+, 3 shares, threshold 2): 5 survivors") !=
                 std::string::npos, secure_log);
  BOOST_TEST(plain_log.find("secure aggregation") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_node_crashed_while_masking_is_recovered_from_its_neighbours_shares) {
  workspace ws;
  write_slice(ws.dir / "data", 3000);
  ws.write_app("secure-aggregation = \"secaggplus\"\n", 5);
  // Node 2 dies when round 2's collect-masked-vectors reaches it: after it
  // shared its keys, so its pairwise masks must come off the sum.
  std::ofstream(ws.dir / "crash.toml") << R"([faults]
seed = 3
[[faults.rule]]
action = "crash"
nodes = [2]
rounds = [2]
stage = "collect-masked-vectors"
when = "before"
)";
  auto r = ws.stamen("run " + (ws.dir / "app").string() + " --format json --faults " +
                     (ws.dir / "crash.toml").string() +
                     " --run-config \"num-server-rounds=2 local-epochs=1\"");
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  auto doc = nlohmann::json::parse(r.out);
  auto& first = doc.at("rounds").at(0).at("train");
  BOOST_TEST(first.at("results").get<int>() == 5);
  BOOST_TEST(first.at("secure_aggregation").at("recovered").empty());
  auto& second = doc.at("rounds").at(1).at("train");
  BOOST_TEST(second.at("results").get<int>() == 4);
  auto& sa = second.at("secure_aggregation");
  BOOST_TEST(sa.at("survivors").size() == 4u);
  BOOST_REQUIRE(sa.at("dropped").size() == 1u);
  BOOST_TEST(sa.at("dropped").at(0).at("stage").get<std::string>() == "collect-masked-vectors");
  BOOST_REQUIRE(sa.at("recovered").size() == 1u);
  BOOST_TEST(sa.at("recovered").at(0) == sa.at("dropped").at(0).at("node"));
  BOOST_TEST(doc.at("rounds").at(1).at("evaluate").at("metrics").at("eval_acc").get<double>() > 0.4);
  BOOST_TEST(r.err.find("dropped at collect-masked-vectors") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("recovered node") != std::string::npos, r.err);

  // A stage that is not one of the four is refused before anything starts.
  std::ofstream(ws.dir / "bad.toml") << "[faults]\n[[faults.rule]]\naction = \"crash\"\n"
                                        "nodes = [1]\nstage = \"masking\"\n";
  auto bad = ws.stamen("run " + (ws.dir / "app").string() + " --faults " + (ws.dir / "bad.toml").string());
  BOOST_TEST(bad.code == 2);
  BOOST_TEST(bad.err.find("'stage' must be one of: setup, share-keys, collect-masked-vectors, unmask") !=
                 std::string::npos, bad.err);
}

BOOST_AUTO_TEST_CASE(the_same_seed_gives_the_same_run_bit_for_bit) {
  workspace ws;
  write_slice(ws.dir / "data", 1500);
  ws.write_app();
  auto app = (ws.dir / "app").string();
  std::string first_model, first_json;
  for (const char* threads : {"1", "2"}) {
    auto r = ws.stamen("run " + app + " --format json --federation-config compute-threads=" +
                       threads + " --run-config \"num-server-rounds=2\"");
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    auto doc = nlohmann::json::parse(r.out);
    doc.erase("seconds");
    for (auto& round : doc["rounds"]) {
      round["train"].erase("seconds");
      round["evaluate"].erase("seconds");
    }
    auto model = slurp(ws.dir / "final.pt");
    BOOST_REQUIRE(!model.empty());
    if (first_model.empty()) {
      first_model = model;
      first_json = doc.dump();
      continue;
    }
    BOOST_TEST((model == first_model), "final.pt differs between runs with the same seed");
    BOOST_TEST(doc.dump() == first_json);
  }
}

BOOST_AUTO_TEST_CASE(sigint_stops_a_run_with_the_result_so_far) {
  workspace ws;
  write_slice(ws.dir / "data", 1500);
  ws.write_app();
  stamen::test::child_process run(
      {STAMEN_BIN, "run", (ws.dir / "app").string(), "--format", "json", "--run-config",
       "num-server-rounds=1000"},
      (ws.dir / "log").string(), (ws.dir / "out.json").string());
  // Interrupted once round 2 has begun: round 1 is complete by then.
  BOOST_REQUIRE_MESSAGE(run.wait_for("[ROUND 2/1000]", 120) >= 0, run.log());
  run.signal(SIGINT);
  BOOST_TEST(run.wait(120) == 128 + SIGINT, run.log());
  BOOST_TEST(run.log().find("Run stopped after") != std::string::npos, run.log());
  auto doc = nlohmann::json::parse(slurp(ws.dir / "out.json"));
  BOOST_TEST(doc["stopped"].get<bool>());
  BOOST_TEST(doc["rounds"].size() >= 1u);
  BOOST_TEST(doc["rounds"].size() < 1000u);
  BOOST_TEST(doc["rounds"][0]["train"]["results"].get<int>() == 3);
}

BOOST_AUTO_TEST_CASE(a_killed_simulation_resumes_from_its_checkpoint_bit_for_bit) {
  workspace ws;
  write_slice(ws.dir / "data", 1500);
  ws.write_app();
  auto app = (ws.dir / "app").string();
  // Never interrupted.
  auto whole = ws.stamen("run " + app + " --format json --run-config \"num-server-rounds=4\"");
  BOOST_REQUIRE_MESSAGE(whole.code == 0, whole.err);
  auto model = slurp(ws.dir / "final.pt");
  fs::remove(ws.dir / "final.pt");
  // Killed (SIGKILL, no chance to clean up) once round 3 has begun: the
  // checkpoint after round 2 is on disk.
  auto checkpoints = (ws.dir / "checkpoints").string();
  {
    stamen::test::child_process run({STAMEN_BIN, "run", app, "--checkpoint-dir", checkpoints, "--run-config",
                                     "num-server-rounds=4"},
                                    (ws.dir / "log").string());
    BOOST_REQUIRE_MESSAGE(run.wait_for("[ROUND 3/4]", 120) >= 0, run.log());
    run.signal(SIGKILL);
    BOOST_TEST(run.wait(30) == 128 + SIGKILL);
  }
  BOOST_TEST(!fs::exists(ws.dir / "final.pt"));
  // The same directory again without --resume is refused: it would start over.
  auto again = ws.stamen("run " + app + " --checkpoint-dir " + checkpoints + " --run-config \"num-server-rounds=4\"");
  BOOST_TEST(again.code == 2);
  BOOST_TEST(again.err.find("--resume " + checkpoints) != std::string::npos, again.err);
  // Another run config is another run.
  auto other = ws.stamen("run " + app + " --resume " + checkpoints + " --run-config \"num-server-rounds=5\"");
  BOOST_TEST(other.code == 2);
  BOOST_TEST(other.err.find("was written by another run") != std::string::npos, other.err);
  // Resumed: rounds 3 and 4 only, and the same model, bit for bit.
  auto resumed = ws.stamen("run " + app + " --format json --resume " + checkpoints +
                           " --run-config \"num-server-rounds=4\"");
  BOOST_REQUIRE_MESSAGE(resumed.code == 0, resumed.err);
  BOOST_TEST(resumed.err.find("Resuming from a checkpoint at round 3/4") != std::string::npos, resumed.err);
  BOOST_TEST(resumed.err.find("[ROUND 2/4]") == std::string::npos);
  BOOST_TEST((slurp(ws.dir / "final.pt") == model), "final.pt differs from the uninterrupted run's");
  auto a = nlohmann::json::parse(whole.out), b = nlohmann::json::parse(resumed.out);
  BOOST_REQUIRE_EQUAL(b["rounds"].size(), 4u);
  for (size_t r = 0; r < 4; ++r)
    BOOST_TEST(a["rounds"][r]["evaluate"]["metrics"].dump() == b["rounds"][r]["evaluate"]["metrics"].dump());
}

BOOST_AUTO_TEST_CASE(a_live_line_on_a_terminal_and_none_in_a_file_quiet_and_verbose) {
  workspace ws;
  write_slice(ws.dir / "data", 1500);
  ws.write_app();
  auto app = (ws.dir / "app").string();
  // Under a pseudo-terminal (util-linux's `script`): the live line is drawn
  // and redrawn in place under the log.
  auto under_pty = ::stamen::test::shell("script -q -e -c '" + std::string{STAMEN_BIN} + " run " + app +
                                             " --run-config num-server-rounds=2' /dev/null",
                                         ws.dir);
  bool no_pty = under_pty.code != 0 && under_pty.err.find("pseudo-terminal") != std::string::npos;
  if (no_pty) {
    BOOST_TEST_MESSAGE("skipped the terminal part: this machine gives `script` no pseudo-terminal");
  } else {
    BOOST_REQUIRE_MESSAGE(under_pty.code == 0, under_pty.out << under_pty.err);
    auto& screen = under_pty.out;
    BOOST_TEST(screen.find("\r\033[K") != std::string::npos);
    BOOST_TEST(screen.find("round 1/2 train: ") != std::string::npos, screen.substr(0, 2000));
    BOOST_TEST(screen.find("round 2/2 evaluate: 3/3 replies, 0 failures") != std::string::npos);
    BOOST_TEST(screen.find("s left") != std::string::npos);
  }
  // Into a file: Flower's log only, not one escape sequence.
  auto plain = ws.stamen("run " + app + " --report " + (ws.dir / "report").string() +
                         " --run-config num-server-rounds=1");
  BOOST_REQUIRE_MESSAGE(plain.code == 0, plain.err);
  // --report: the page and a chart per metric of this run.
  auto page = slurp(ws.dir / "report" / "report.html");
  BOOST_TEST(page.find("<figure id=\"evaluate-eval_acc\"") != std::string::npos);
  BOOST_TEST(fs::exists(ws.dir / "report" / "train-train_loss.svg"));
  BOOST_TEST(plain.err.find('\033') == std::string::npos);
  BOOST_TEST(plain.err.find("[ROUND 1/1]") != std::string::npos);
  // --quiet: nothing but warnings and errors; --verbose: debug lines too.
  auto quiet = ws.stamen("run " + app + " --quiet --run-config num-server-rounds=1");
  BOOST_REQUIRE(quiet.code == 0);
  BOOST_TEST(quiet.err.find("INFO") == std::string::npos, quiet.err);
  BOOST_TEST(fs::exists(ws.dir / "final.pt"));
  auto verbose = ws.stamen("run " + app + " --verbose --checkpoint-dir " + (ws.dir / "cp").string() +
                           " --run-config num-server-rounds=1");
  BOOST_REQUIRE(verbose.code == 0);
  BOOST_TEST(verbose.err.find("DEBUG :     checkpoint after round 1: ") != std::string::npos, verbose.err);
  auto both = ws.stamen("run " + app + " --quiet --verbose");
  BOOST_TEST(both.code != 0);
}

BOOST_AUTO_TEST_SUITE_END()
