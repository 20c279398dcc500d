#pragma once

// A superlink and supernode processes on loopback for the cross-process
// benchmarks: `nodes` SuperNodes spread over `processes` supernode
// processes (`--nodes`, partitions by offset), and a run of an app on them.

#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "../tests/support/child_process.hpp"

namespace bench {

class local_cluster {
 public:
  using strings = std::vector<std::string>;

  /// Starts the superlink (with `superlink_args`) and the supernodes, and
  /// returns once every process has joined; exits the benchmark on failure.
  local_cluster(std::string stamen, int nodes, int processes, const strings& superlink_args = {})
      : stamen_(std::move(stamen)), nodes_(nodes) {
    work_ = std::filesystem::temp_directory_path() / ("stamen-bench-" + std::to_string(getpid()));
    std::filesystem::create_directories(work_);
    strings argv{stamen_, "superlink", "--port", "0", "--insecure-accept-bundles"};
    argv.insert(argv.end(), superlink_args.begin(), superlink_args.end());
    link_ = std::make_unique<stamen::test::child_process>(argv, (work_ / "superlink.log").string());
    if (link_->wait_for("listening on ", 15) < 0) fail("the superlink did not start", link_->log());
    port_ = link_->word_after("listening on ");
    for (int k = 0; k < processes; ++k) {
      int n = nodes / processes + (k < nodes % processes ? 1 : 0);
      int offset = k * (nodes / processes) + std::min(k, nodes % processes);
      hosts_.push_back(std::make_unique<stamen::test::child_process>(
          strings{stamen_, "supernode", "--superlink", "127.0.0.1:" + port_, "--insecure-accept-bundles", "--nodes",
                  std::to_string(n), "--partition-offset", std::to_string(offset), "--node-config",
                  "num-partitions=" + std::to_string(nodes), "--bundle-cache", (work_ / "cache").string()},
          (work_ / ("supernode-" + std::to_string(k) + ".log")).string()));
    }
    if (link_->wait_for("joined from", 120, static_cast<size_t>(processes)) < 0)
      fail("the supernodes did not join", link_->log());
  }

  ~local_cluster() {
    for (auto& h : hosts_) h->signal(SIGTERM);
    link_->signal(SIGTERM);
    link_->wait(10);
    std::error_code ec;
    std::filesystem::remove_all(work_, ec);
  }

  stamen::test::child_process& superlink() { return *link_; }
  const std::filesystem::path& work() const { return work_; }

  /// `stamen run APP` on this cluster, starting once every node is
  /// connected; returns its JSON result (exits the benchmark if it failed).
  nlohmann::json run(const std::string& app, const std::string& run_config) {
    auto out = work_ / "result.json";
    stamen::test::child_process r{{stamen_, "run", app, "--format", "json", "--federation-config",
                                   "address=127.0.0.1:" + port_ + " num-supernodes=" + std::to_string(nodes_),
                                   "--run-config", run_config},
                                  (work_ / "run.log").string(), out.string()};
    if (r.wait(1800) != 0) fail("the run failed", r.log());
    std::ifstream in(out);
    return nlohmann::json::parse(in);
  }

  [[noreturn]] static void fail(const std::string& what, const std::string& log) {
    std::cerr << "bench: " << what << ":\n" << log;
    std::exit(1);
  }

 private:
  std::string stamen_;
  int nodes_;
  std::filesystem::path work_;
  std::unique_ptr<stamen::test::child_process> link_;
  std::vector<std::unique_ptr<stamen::test::child_process>> hosts_;
  std::string port_;
};

/// The median of a result's per-round wall time (train plus evaluate phase).
inline double median_round_s(const nlohmann::json& doc) {
  std::vector<double> xs;
  for (auto& r : doc["rounds"])
    xs.push_back(r["train"]["seconds"].get<double>() + r["evaluate"]["seconds"].get<double>());
  std::sort(xs.begin(), xs.end());
  return xs.empty() ? 0 : xs[xs.size() / 2];
}

}  // namespace bench
