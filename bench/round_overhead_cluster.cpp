// Round overhead across processes: the tests' arithmetic app (a 3-float
// model) with NODES SuperNodes in four `stamen supernode --nodes` processes
// on loopback, against the same app, node count and rounds in one process
// (a simulation) in the same benchmark. Per node per round = median round
// wall time (train plus evaluate) / NODES. Target: at most 2x in-process.
//   bench_round_overhead_cluster STAMEN GATED_APP_DIR [NODES=100000] [ROUNDS=3]
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

  bench::local_cluster cluster{stamen, nodes, procs};
  auto across = bench::median_round_s(cluster.run(app, config));
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
  return 0;
}
