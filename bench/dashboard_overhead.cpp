// What the superlink's HTTP side costs a run: round time of a cluster run
// of 1,000 nodes (four `stamen supernode --nodes 250` processes on
// loopback, the tests' arithmetic app), with no HTTP client and with one
// that polls like the dashboard once a second (/, /api/runs, /api/nodes,
// /api/warnings, the run's /api/runs/<id>) plus a Prometheus scrape of
// /metrics. The two kinds of run alternate, so that drift of a loaded
// machine falls on both; the median over pairs of the ratio of their
// median round times is the figure (the baseline: the same runs without the
// client). The target, at most 1.1, is ours: a dashboard should not slow
// the federation it shows.
//   bench_dashboard_overhead STAMEN GATED_APP_DIR [NODES=1000] [ROUNDS=100] [PAIRS=5]
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "bench_util.hpp"
#include "local_cluster.hpp"

namespace {

// Polls like the dashboard's page does, once a second, until told to stop;
// counts the requests answered and the slowest answer.
struct poller {
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, failed{0};
  double slowest_s = 0;
  std::thread thread;

  void start(int http_port) {
    thread = std::thread([this, http_port] {
      httplib::Client http{"127.0.0.1", http_port};
      http.set_read_timeout(10, 0);
      while (!stop) {
        auto t0 = bench::now_s();
        std::string run_id;
        for (auto* path : {"/", "/api/runs", "/api/nodes", "/api/warnings", "/metrics"}) {
          auto t = bench::now_s();
          auto r = http.Get(path);
          slowest_s = std::max(slowest_s, bench::now_s() - t);
          if (!r || r->status != 200) {
            ++failed;
            continue;
          }
          ++answered;
          if (std::string{path} == "/api/runs") {
            auto runs = nlohmann::json::parse(r->body, nullptr, false);
            if (runs.is_array() && !runs.empty()) run_id = runs.back().value("id", std::string{});
          }
        }
        if (!run_id.empty()) {
          auto r = http.Get(("/api/runs/" + run_id).c_str());
          if (r && r->status == 200) ++answered;
          else ++failed;
        }
        // The rest of the second, in small steps so that stop is prompt.
        while (!stop && bench::now_s() - t0 < 1.0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }
  void finish() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_dashboard_overhead STAMEN GATED_APP_DIR [NODES] [ROUNDS] [PAIRS]\n";
    return 2;
  }
  std::string stamen = argv[1], app = argv[2];
  int nodes = argc > 3 ? std::stoi(argv[3]) : 1000;
  int rounds = argc > 4 ? std::stoi(argv[4]) : 100;
  int pairs = argc > 5 ? std::stoi(argv[5]) : 5;
  const int procs = 4;
  bench::local_cluster cluster{stamen, nodes, procs, {"--http-port", "0"}};
  auto http_port = std::stoi(cluster.superlink().word_after("127.0.0.1:"));
  auto config = "num-server-rounds=" + std::to_string(rounds) + " min-nodes=" + std::to_string(nodes);
  auto run = [&](bool polled) {
    poller p;
    if (polled) p.start(http_port);
    auto doc = cluster.run(app, config);
    p.finish();
    return std::tuple{bench::median_round_s(doc), p.answered.load(), p.failed.load(), p.slowest_s};
  };

  run(false);  // warm-up: the bundle reaches the nodes' cache
  // Pairs of runs, one of each kind back to back (which goes first
  // alternates): the ratio within a pair shares the machine's state of the
  // moment, and the median over pairs is the figure.
  std::vector<double> plain, polled, ratios;
  int answered = 0, failed = 0;
  double slowest = 0;
  for (int i = 0; i < pairs; ++i) {
    double pair[2] = {0, 0};
    for (bool with : i % 2 == 0 ? std::vector<bool>{false, true} : std::vector<bool>{true, false}) {
      auto [median, ok, bad, slow] = run(with);
      std::cerr << "dashboard_overhead: " << (with ? "polled" : "plain ") << " run: median round "
                << median * 1000 << " ms\n";
      (with ? polled : plain).push_back(median);
      pair[with ? 1 : 0] = median;
      if (with) answered += ok, failed += bad, slowest = std::max(slowest, slow);
    }
    ratios.push_back(pair[1] / pair[0]);
  }
  auto median = [](std::vector<double> xs) {
    std::sort(xs.begin(), xs.end());
    return xs[xs.size() / 2];
  };
  double base = median(plain), with = median(polled), ratio = median(ratios);
  bench::line("dashboard_overhead")
      .num("nodes", nodes)
      .num("supernode_processes", procs)
      .num("rounds_per_run", rounds)
      .num("pairs", pairs)
      .num("baseline_round_ms", base * 1000)
      .num("polled_round_ms", with * 1000)
      .num("baseline_us_per_node", base * 1e6 / nodes)
      .num("polled_us_per_node", with * 1e6 / nodes)
      .num("ratio", ratio)
      .num("ratio_min", *std::min_element(ratios.begin(), ratios.end()))
      .num("ratio_max", *std::max_element(ratios.begin(), ratios.end()))
      .num("http_requests_answered", answered)
      .num("http_requests_failed", failed)
      .num("slowest_http_answer_ms", slowest * 1000)
      .num("target_ratio", 1.1)
      .flag("met", ratio <= 1.1 && failed == 0)
      .print();
  return 0;
}
