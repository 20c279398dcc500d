// Round overhead across processes: the tests' arithmetic app (a 3-float
// model) with NODES SuperNodes in four `stamen supernode --nodes` processes
// on loopback, against the same app, node count and rounds in one process
// (a simulation) in the same benchmark. Per node per round = median round
// wall time (train plus evaluate) / NODES. Target: at most 2x in-process.
// Then MODEL_NODES nodes with the quickstart's model size (62,006 floats)
// across processes, against a plain weighted sum of as many such arrays in
// this process (what FedAvg's arithmetic costs without moving a byte); no
// target: the figure says what the wire and the fan-out cost.
//   bench_round_overhead_cluster STAMEN GATED_APP_DIR [NODES=100000] [ROUNDS=3] [MODEL_NODES=10000]
#include <algorithm>
#include <iostream>

#include "bench_util.hpp"
#include "local_cluster.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_round_overhead_cluster STAMEN GATED_APP_DIR [NODES] [ROUNDS]\n";
    return 2;
  }
  // Absolute: the simulation runs in a directory of its own.
  std::string stamen = std::filesystem::absolute(argv[1]).string(), app = std::filesystem::absolute(argv[2]).string();
  int nodes = argc > 3 ? std::stoi(argv[3]) : 100000;
  int rounds = argc > 4 ? std::stoi(argv[4]) : 3;
  const int procs = 4;
  auto config = "num-server-rounds=" + std::to_string(rounds) + " min-nodes=" + std::to_string(nodes);

  // In one process: the app's simulation federation with as many nodes.
  auto work = std::filesystem::temp_directory_path() / ("stamen-bench-sim-" + std::to_string(getpid()));
  std::filesystem::create_directories(work);
  auto out = work / "result.json";
  // The app writes its final arrays to the working directory of its
  // ServerApp: this one's own.
  std::filesystem::current_path(work);
  stamen::test::child_process sim{{stamen, "run", app, "--federation", "local-simulation", "--format", "json",
                                   "--federation-config", "num-supernodes=" + std::to_string(nodes),
                                   "--run-config", config},
                                  (work / "run.log").string(), out.string()};
  if (sim.wait(1800) != 0) bench::local_cluster::fail("the simulation failed", sim.log());
  std::ifstream in(out);
  auto in_process = bench::median_round_s(nlohmann::json::parse(in));
  std::filesystem::remove_all(work);

  double across = 0;
  {
    bench::local_cluster cluster{stamen, nodes, procs};
    across = bench::median_round_s(cluster.run(app, config));
  }
  bench::line("round_overhead")
      .str("scope", "cross-process")
      .num("nodes", nodes)
      .num("supernode_processes", procs)
      .num("rounds", rounds)
      .num("us_per_node", across * 1e6 / nodes)
      .num("baseline_in_process_us_per_node", in_process * 1e6 / nodes)
      .num("ratio", across / in_process)
      .num("target_ratio", 2)
      .flag("met", across / in_process <= 2)
      .print();

  // The quickstart's model size: the train phase moves it to every node and
  // back; the baseline folds as many arrays in memory.
  int model_nodes = argc > 5 ? std::stoi(argv[5]) : 10000;
  const size_t floats = 62006;
  double train_s = 0;
  {
    bench::local_cluster cluster{stamen, model_nodes, procs};
    auto doc = cluster.run(app, "num-server-rounds=" + std::to_string(rounds) + " min-nodes=" +
                                    std::to_string(model_nodes) + " model-floats=" + std::to_string(floats));
    std::vector<double> xs;
    for (auto& r : doc["rounds"]) xs.push_back(r["train"]["seconds"].get<double>());
    std::sort(xs.begin(), xs.end());
    train_s = xs[xs.size() / 2];
  }
  std::vector<float> x(floats, 1.f);
  std::vector<double> sum(floats);
  double plain_s = bench::median_time(3, 1, [&] {
    std::fill(sum.begin(), sum.end(), 0.0);
    double total = 0;
    for (int n = 0; n < model_nodes; ++n) {
      double w = n + 1;
      for (size_t i = 0; i < floats; ++i) sum[i] += w * x[i];
      total += w;
    }
    for (auto& v : sum) v /= total;
  });
  bench::line("round_overhead")
      .str("scope", "cross-process")
      .str("model", "quickstart-62k-floats")
      .num("nodes", model_nodes)
      .num("supernode_processes", procs)
      .num("train_phase_seconds", train_s)
      .num("baseline_plain_fedavg_seconds", plain_s)
      .num("ratio", train_s / plain_s)
      .print();
  return 0;
}
