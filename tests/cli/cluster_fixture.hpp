#pragma once

// The cluster, end to end: a real superlink and real supernodes as separate
// processes on 127.0.0.1, started, killed, frozen and restarted by pid by the
// tests themselves. The app code is the same as in simulation.
//
// The fixture and the helpers the cluster tests share (cluster_test.cpp,
// cluster_runs_test.cpp, cluster_security_test.cpp, cluster_http_test.cpp);
// each file's cases are in the suite `cluster`, with this fixture.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/child_process.hpp"
#include "tests/support/shell.hpp"

namespace fs = std::filesystem;
using stamen::test::child_process;
using strings = std::vector<std::string>;

inline const std::string stamen_bin = STAMEN_BIN;
inline const fs::path source_dir = STAMEN_SOURCE_DIR;

inline strings operator+(strings a, const strings& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Waits for every node to join (the superlink logs each).
inline void wait_joined(child_process& link, size_t n) {
  BOOST_REQUIRE_MESSAGE(link.wait_for("joined from", 20, n) >= 0,
                        "nodes did not join:\n" + link.log());
}

// Each test case works in a directory of its own (logs, certificates, models).
struct cluster_fixture {
  fs::path dir;
  int next_log = 0;

  cluster_fixture() {
    auto name = boost::unit_test::framework::current_test_case().p_name.get();
    dir = fs::temp_directory_path() / ("stamen-cluster-" + std::to_string(getpid())) / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
  }

  std::string log_path(const std::string& what) {
    return (dir / (std::to_string(++next_log) + "-" + what + ".log")).string();
  }

  static bool has_tls(const strings& args) {
    return std::find(args.begin(), args.end(), "--root-certificates") != args.end();
  }

  /// A superlink on `port` (0: any); returns it once it listens, with its
  /// port. Without TLS it takes bundles from any submitter, as it must to
  /// run anything.
  std::pair<std::unique_ptr<child_process>, int> superlink(const strings& extra = {}, int port = 0) {
    auto p = std::make_unique<child_process>(
        strings{stamen_bin, "superlink", "--port", std::to_string(port)} + extra +
            (has_tls(extra) ? strings{} : strings{"--insecure-accept-bundles"}),
        log_path("superlink"));
    BOOST_REQUIRE_MESSAGE(p->wait_for("listening on ", 15) >= 0, "superlink did not start:\n" + p->log());
    auto listening = std::stoi(p->word_after("listening on "));
    return {std::move(p), listening};
  }

  /// A supernode with a bundle cache of its own, empty unless `cache` names
  /// one used before: it has never seen any app.
  std::unique_ptr<child_process> supernode(int port, const std::string& node_config,
                                           const strings& extra = {}, std::string cache = {}) {
    if (cache.empty()) cache = (dir / ("cache-" + std::to_string(next_log + 1))).string();
    return std::make_unique<child_process>(
        strings{stamen_bin, "supernode", "--superlink", "127.0.0.1:" + std::to_string(port),
                "--node-config", node_config, "--bundle-cache", cache} +
            extra + (has_tls(extra) ? strings{} : strings{"--insecure-accept-bundles"}),
        log_path("supernode"));
  }

  /// `stamen run APP --federation local-cluster` against `port`, in the
  /// background. APP is one of apps/, or "gated" or "broken" (tests/cli/).
  std::unique_ptr<child_process> run(const std::string& app, int port, const std::string& run_config,
                                     const strings& extra = {}) {
    auto app_dir = app == "gated" || app == "broken" ? source_dir / "tests" / "cli" / app : source_dir / "apps" / app;
    return std::make_unique<child_process>(
        strings{stamen_bin, "run", app_dir.string(), "--federation",
                "local-cluster", "--federation-config", "address=127.0.0.1:" + std::to_string(port),
                "--format", "json"} +
            extra + (run_config.empty() ? strings{} : strings{"--run-config", run_config}),
        log_path("run-" + app), (dir / "result.json").string());
  }

  /// `n` supernodes on partitions 0..n-1 of `partitions`, joined.
  std::vector<std::unique_ptr<child_process>> nodes(child_process& link, int port, int n,
                                                    int partitions) {
    std::vector<std::unique_ptr<child_process>> out;
    for (int i = 0; i < n; ++i)
      out.push_back(supernode(port, "partition-id=" + std::to_string(i) +
                                        " num-partitions=" + std::to_string(partitions)));
    wait_joined(link, static_cast<size_t>(n));
    return out;
  }

  nlohmann::json result() {
    std::ifstream in(dir / "result.json");
    return nlohmann::json::parse(in);
  }

  /// `stamen VERB ARGS... tests/cli/gated --federation-config address=...`,
  /// in the background, its stdout in its own file (see out()).
  std::unique_ptr<child_process> control(const std::string& verb, int port, const strings& args = {}) {
    auto out = dir / ("out-" + std::to_string(++next_log) + ".txt");
    auto p = std::make_unique<child_process>(
        strings{stamen_bin, verb} + args +
            strings{(source_dir / "tests" / "cli" / "gated").string(), "--federation-config",
                    "address=127.0.0.1:" + std::to_string(port)},
        log_path(verb), out.string());
    outs[p.get()] = out;
    return p;
  }
  std::string out(const child_process* p) { return stamen::test::slurp(outs.at(p)); }
  std::map<const child_process*, fs::path> outs;

  /// A gated run submitted with --detach; returns its id.
  /// `federation` adds to the federation's overrides (e.g. " num-supernodes=5").
  std::string detached(int port, const std::string& run_config, const std::string& federation = {}) {
    // The app first: --run-config takes every word after it.
    auto stdout_file = dir / ("out-" + std::to_string(++next_log) + ".txt");
    auto r = std::make_unique<child_process>(
        strings{stamen_bin, "run", (source_dir / "tests" / "cli" / "gated").string(), "--detach",
                "--federation-config", "address=127.0.0.1:" + std::to_string(port) + federation} +
            (run_config.empty() ? strings{} : strings{"--run-config", run_config}),
        log_path("run"), stdout_file.string());
    BOOST_REQUIRE_MESSAGE(r->wait(60) == 0, r->log());
    auto id = stamen::test::slurp(stdout_file);
    while (!id.empty() && id.back() == '\n') id.pop_back();
    BOOST_REQUIRE(!id.empty());
    return id;
  }

  /// `stamen ls --format json`, by run id.
  std::map<std::string, nlohmann::json> ls(int port) {
    auto p = control("ls", port, {"--format", "json"});
    BOOST_REQUIRE_MESSAGE(p->wait(30) == 0, p->log());
    std::map<std::string, nlohmann::json> runs;
    for (auto& r : nlohmann::json::parse(out(p.get()))) runs[std::to_string(r["run_id"].get<uint64_t>())] = r;
    return runs;
  }

  /// The gated app's final arrays of the run in `doc` (its result), as
  /// `stamen pull` brings them back into dir/pulled.
  std::vector<double> pulled_final_arrays(int port, const nlohmann::json& doc) {
    auto pull = control("pull", port, {std::to_string(doc["run_id"].get<uint64_t>()), "--dir", (dir / "pulled").string()});
    BOOST_REQUIRE_MESSAGE(pull->wait(60) == 0, pull->log());
    std::ifstream in(dir / "pulled" / "final_arrays.txt");
    return {std::istream_iterator<double>(in), std::istream_iterator<double>()};
  }
};

// The quickstart on small slices: each node trains on 1/30 of Fashion-MNIST
// (or 1/10 where a round must last long enough to be interrupted).
inline std::string quickstart_config(int rounds) {
  return "num-server-rounds=" + std::to_string(rounds) +
         " fraction-train=1.0 fraction-evaluate=1.0 round-timeout=120.0";
}

inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}
