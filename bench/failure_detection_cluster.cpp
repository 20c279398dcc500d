// Cross-process failure detection: time from SIGKILL or SIGSTOP of a
// supernode process to the superlink declaring it down, against the heartbeat
// interval configured. A killed process closes its socket, so the superlink
// hears of it at once; a frozen one keeps its socket open and is found by the
// missing heartbeats (timeout plus at most one heartbeat interval).
//   bench_failure_detection_cluster STAMEN [REPEATS]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "bench_util.hpp"
#include "../tests/support/child_process.hpp"

namespace fs = std::filesystem;
using stamen::test::child_process;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_failure_detection_cluster STAMEN [REPEATS]\n";
    return 2;
  }
  std::string stamen = argv[1];
  int reps = argc > 2 ? std::stoi(argv[2]) : 5;
  const double heartbeat = 0.5, timeout = 2.0;  // the superlink's defaults
  auto work = fs::temp_directory_path() / ("stamen-detect-" + std::to_string(getpid()));
  fs::create_directories(work);
  child_process link{{stamen, "superlink", "--port", "0", "--heartbeat", std::to_string(heartbeat),
                      "--timeout", std::to_string(timeout)},
                     (work / "superlink.log").string()};
  if (link.wait_for("listening on ", 10) < 0) return 1;
  auto address = "127.0.0.1:" + link.word_after("listening on ");
  for (auto [name, sig] : {std::pair{"sigkill", SIGKILL}, std::pair{"sigstop", SIGSTOP}}) {
    std::vector<double> xs;
    for (int i = 0; i < reps; ++i) {
      auto joined = link.count("joined from");
      auto down = link.count("disconnected");
      child_process node{{stamen, "supernode", "--superlink", address},
                         (work / ("node-" + std::string{name} + std::to_string(i) + ".log")).string()};
      if (link.wait_for("joined from", 10, joined + 1) < 0) return 1;
      // Let the link settle into its heartbeat rhythm first.
      std::this_thread::sleep_for(std::chrono::milliseconds(700));
      node.signal(sig);
      double t = link.wait_for("disconnected", 10, down + 1);
      if (t < 0) return 1;
      xs.push_back(t);
      node.signal(SIGKILL);
      node.signal(SIGCONT);
    }
    std::sort(xs.begin(), xs.end());
    bench::line("failure_detection")
        .str("scope", "cross-process")
        .str("fault", name)
        .num("median_ms", xs[xs.size() / 2] * 1000)
        .num("max_ms", xs.back() * 1000)
        .num("baseline_heartbeat_ms", heartbeat * 1000)
        .num("timeout_ms", timeout * 1000)
        .num("ratio_to_heartbeat", xs[xs.size() / 2] / heartbeat)
        .num("target_ms", 3000)
        .flag("met", xs.back() <= 3.0)
        .print();
  }
  link.signal(SIGTERM);
  link.wait(5);
  fs::remove_all(work);
  return 0;
}
