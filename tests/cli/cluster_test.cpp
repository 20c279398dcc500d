// The cluster, end to end: a real superlink and real supernodes as separate
// processes on 127.0.0.1, started, killed, frozen and restarted by pid by the
// tests themselves. The app code is the same as in simulation.
#include <boost/test/unit_test.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <numeric>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/arithmetic_app.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/shell.hpp"
#include "tests/support/test_pki.hpp"

namespace fs = std::filesystem;
using stamen::test::child_process;
using strings = std::vector<std::string>;

namespace {

const std::string stamen_bin = STAMEN_BIN;
const fs::path source_dir = STAMEN_SOURCE_DIR;

strings operator+(strings a, const strings& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Waits for every node to join (the superlink logs each).
void wait_joined(child_process& link, size_t n) {
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
};

// The quickstart on small slices: each node trains on 1/30 of Fashion-MNIST
// (or 1/10 where a round must last long enough to be interrupted).
std::string quickstart_config(int rounds) {
  return "num-server-rounds=" + std::to_string(rounds) +
         " fraction-train=1.0 fraction-evaluate=1.0 round-timeout=120.0";
}

int free_port() {
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

// Opens a raw connection to the superlink, reads its challenge, sends
// `bytes`, and reports whether the superlink closed the connection.
bool superlink_hangs_up_on(int port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  (void) ::recv(fd, buf, sizeof buf, 0);  // the challenge
  (void) ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  bool closed = false;
  for (int i = 0; i < 10 && !closed; ++i) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }
  close(fd);
  return closed;
}

// A frame header as the wire defines it (actors/wire_frame.hpp), version 2.
std::string frame_header(uint8_t type, uint64_t length, uint8_t version = 2) {
  std::string h(16, '\0');
  uint32_t magic = 0x4e4d5453;
  std::memcpy(h.data(), &magic, 4);
  h[4] = static_cast<char>(version);
  h[5] = static_cast<char>(type);
  std::memcpy(h.data() + 8, &length, 8);
  return h;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(cluster, cluster_fixture)

BOOST_AUTO_TEST_CASE(quickstart_runs_unchanged_on_a_superlink_and_three_supernodes) {
  auto [link, port] = superlink();
  auto nodes = this->nodes(*link, port, 3, 30);
  auto model = (dir / "final_model.pt").string();
  auto started = std::chrono::steady_clock::now();
  auto run = this->run("quickstart", port, quickstart_config(2) + " final-model=" + model,
                       {"--report", (dir / "report").string()});
  // None of the nodes has the app: its bundle reaches all three.
  for (auto& n : nodes) BOOST_REQUIRE_MESSAGE(n->wait_for("installed bundle", 120) >= 0, n->log());
  std::chrono::duration<double> reached = std::chrono::steady_clock::now() - started;
  BOOST_TEST_MESSAGE("the quickstart's bundle reached 3 nodes " << reached.count()
                                                                << " s after `stamen run` started");
  BOOST_REQUIRE_MESSAGE(run->wait(300) == 0, run->log());
  auto doc = result();
  BOOST_REQUIRE_EQUAL(doc["rounds"].size(), 2u);
  for (auto& r : doc["rounds"]) {
    BOOST_TEST(r["train"]["results"].get<int>() == 3);
    BOOST_TEST(r["evaluate"]["results"].get<int>() == 3);
    BOOST_TEST(r["train"]["failures"].get<int>() == 0);
  }
  auto acc = doc["rounds"][1]["evaluate"]["metrics"]["eval_acc"].get<double>();
  BOOST_TEST_MESSAGE("cluster quickstart eval_acc after 2 rounds: " << acc);
  BOOST_TEST(acc > 0.5);
  BOOST_TEST(fs::exists(model));
  // The submitter prints the run's Flower-format log as the superlink writes it.
  BOOST_TEST(run->count("configure_train: Sampled 3 nodes (out of 3)") == 2u);
  BOOST_TEST(run->count("aggregate_evaluate: Received 3 results and 0 failures") == 2u);
  // --report: the run's report, written by the submitter from its result.
  auto html = stamen::test::slurp(dir / "report" / "report.html");
  BOOST_TEST(html.find("<figure id=\"evaluate-eval_acc\"") != std::string::npos);
  BOOST_TEST(fs::exists(dir / "report" / "evaluate-eval_acc.svg"));
}

BOOST_AUTO_TEST_CASE(fedbuff_and_fedasync_run_unchanged_on_a_superlink) {
  // The asynchronous loop's open stream crosses the superlink like a round's batch.
  auto [link, port] = superlink();
  auto nodes = this->nodes(*link, port, 3, 30);
  auto run = this->run("quickstart", port,
                       quickstart_config(1) + " strategy='fedbuff' concurrency=2 buffer-size=2 "
                                              "num-server-updates=3 evaluate-every=3 final-model=" +
                           (dir / "final_model.pt").string());
  BOOST_REQUIRE_MESSAGE(run->wait(300) == 0, run->log());
  auto doc = result();
  BOOST_REQUIRE_EQUAL(doc["versions"].size(), 3u);
  for (auto& v : doc["versions"]) {
    BOOST_TEST(v["applied"].get<int>() == 2);
    BOOST_TEST(v["failures"].get<int>() == 0);
  }
  BOOST_TEST(doc["versions"][2]["evaluate"]["results"].get<int>() == 3);
  BOOST_TEST(run->count("[VERSION 3/3] applied 2 updates") == 1u);

  // FedAsync on the same superlink: one update a version.
  auto again = this->run("quickstart", port,
                         quickstart_config(1) + " strategy='fedasync' concurrency=2 "
                                                "num-server-updates=4 evaluate-every=4 final-model=" +
                             (dir / "final_model.pt").string());
  BOOST_REQUIRE_MESSAGE(again->wait(300) == 0, again->log());
  auto async = result();
  BOOST_REQUIRE_EQUAL(async["versions"].size(), 4u);
  for (auto& v : async["versions"]) BOOST_TEST(v["applied"].get<int>() == 1);
  BOOST_TEST(async["versions"][3]["evaluate"]["results"].get<int>() == 3);
}

// The submitter of a cluster run draws the superlink's live line under the
// run's log on a terminal (util-linux's `script` gives it one), as a
// simulation does; --quiet leaves only the run's warnings and errors.
BOOST_AUTO_TEST_CASE(a_cluster_run_draws_the_superlinks_live_line_on_a_terminal_and_quiet_is_quiet) {
  auto [link, port] = superlink();
  auto nodes = this->nodes(*link, port, 2, 2);
  auto gate = dir / "open";
  auto command = stamen_bin + " run " + (source_dir / "tests" / "cli" / "gated").string() +
                 " --federation-config address=127.0.0.1:" + std::to_string(port) +
                 " --run-config \"num-server-rounds=2 gate-round=1 gate-file='" + gate.string() + "'\"";
  child_process screen{{"/usr/bin/script", "-q", "-e", "-c", command, "/dev/null"}, log_path("screen")};
  // Held at the gate, round 1's train shows on the line with no reply yet.
  for (auto& n : nodes) BOOST_REQUIRE_MESSAGE(n->wait_for("waiting at the gate", 60) >= 0, n->log());
  bool no_pty = screen.wait_for("pseudo-terminal", 0.1) >= 0;
  if (no_pty) {
    BOOST_TEST_MESSAGE("skipped the terminal part: this machine gives `script` no pseudo-terminal");
  } else {
    BOOST_TEST(screen.wait_for("round 1/2 train: 0/2 replies, 0 failures", 30) >= 0, screen.log());
  }
  std::ofstream{gate};
  BOOST_REQUIRE_MESSAGE(screen.wait(120) == 0, screen.log());
  if (!no_pty) {
    BOOST_TEST(screen.count("\r\033[K") >= 2u);
    BOOST_TEST(screen.count("[ROUND 2/2]") == 1u);
  }
  auto quiet = this->run("gated", port, "num-server-rounds=1", {"--quiet"});
  BOOST_REQUIRE_MESSAGE(quiet->wait(120) == 0, quiet->log());
  BOOST_TEST(quiet->count("INFO") == 0u, quiet->log());
  BOOST_TEST(quiet->count("\033") == 0u);
  BOOST_TEST(result()["rounds"].size() == 1u);
}

BOOST_AUTO_TEST_CASE(sampling_waits_for_min_available_nodes_and_says_why_it_gives_up) {
  auto [link, port] = superlink();
  auto first = supernode(port, "partition-id=0 num-partitions=30");
  wait_joined(*link, 1);
  // One node of the two min_available_nodes asks for: the run gives up
  // after its timeout, saying why.
  auto lonely = this->run("quickstart", port, "num-server-rounds=1 round-timeout=2.0");
  BOOST_TEST(lonely->wait(120) == 1);
  // In the strategy's log and in the superlink's line saying how the run ended.
  BOOST_TEST(lonely->count("only 1 of the 2 nodes required by min_available_nodes are connected after waiting 2s") >= 1u);
  // A node that joins while a run waits lets it start.
  auto run = this->run("quickstart", port, quickstart_config(1));
  BOOST_REQUIRE(link->wait_for("Starting FedAvg strategy", 60, 2) >= 0);
  auto second = supernode(port, "partition-id=1 num-partitions=30");
  BOOST_REQUIRE_MESSAGE(run->wait(300) == 0, run->log());
  BOOST_TEST(result()["rounds"][0]["train"]["results"].get<int>() == 2);
}

BOOST_AUTO_TEST_CASE(a_killed_supernode_is_answered_for_and_a_restarted_one_rejoins) {
  auto [link, port] = superlink({"--heartbeat", "0.2", "--timeout", "1"});
  auto nodes = this->nodes(*link, port, 3, 10);
  // Node 1 is killed while it is known to be inside its train handler (held
  // at the gate), so its instruction can only be answered by the superlink.
  auto gate = dir / "open";
  auto run = this->run("gated", port, "num-server-rounds=3 gate-file='" + gate.string() + "'");
  BOOST_REQUIRE_MESSAGE(nodes[1]->wait_for("waiting at the gate", 60) >= 0, nodes[1]->log());
  nodes[1]->signal(SIGKILL);
  auto detected = link->wait_for("disconnected", 5);
  BOOST_TEST_MESSAGE("SIGKILLed supernode detected after " << detected * 1000 << " ms");
  BOOST_REQUIRE(detected >= 0);
  BOOST_TEST(detected < 10.0);  // a bound against a hang; the benchmark measures it
  // The grid answers for the instruction the node owed (logged just after).
  BOOST_TEST(link->wait_for("answering for 1 instruction(s)", 5) >= 0);
  // The same partition comes back as a new process and joins the same run;
  // then the others go on.
  nodes[1] = supernode(port, "partition-id=1 num-partitions=10");
  wait_joined(*link, 4);
  std::ofstream{gate};
  BOOST_REQUIRE_MESSAGE(run->wait(300) == 0, run->log());
  auto doc = result();
  BOOST_REQUIRE_EQUAL(doc["rounds"].size(), 3u);
  BOOST_TEST(doc["rounds"][0]["train"]["failures"].get<int>() == 1);
  BOOST_TEST(doc["rounds"][0]["train"]["results"].get<int>() == 2);
  BOOST_TEST(doc["rounds"][0]["train"]["failure_reasons"][0].get<std::string>().find(
                 "became unavailable") != std::string::npos);
  // Later rounds see three nodes, never four: the dead one is not counted
  // again, and the restarted one takes part.
  BOOST_TEST(doc["rounds"][2]["train"]["sampled"].get<int>() == 3);
  BOOST_TEST(doc["rounds"][2]["train"]["results"].get<int>() == 3);
}

// A simulation spread over processes: 3,000 nodes in three supernode
// processes of 1,000 each (one link each, partitions by offset), started by
// the federation's num-supernodes once all have joined. The third process is
// killed while its nodes are inside round 2's train: each of its 1,000
// instructions is answered as a failure, and FedAvg over the other 2,000 is
// exact.
BOOST_AUTO_TEST_CASE(a_simulation_of_3000_nodes_spans_three_processes_and_a_killed_one_counts_exactly) {
  auto [link, port] = superlink();
  std::vector<std::unique_ptr<child_process>> procs;
  for (int k = 0; k < 3; ++k)
    procs.push_back(supernode(port, "num-partitions=3000",
                              {"--nodes", "1000", "--partition-offset", std::to_string(1000 * k)}));
  auto gate = dir / "open";
  auto run = this->run("gated", port,
                       "num-server-rounds=2 min-nodes=2000 gate-round=2 gate-file='" + gate.string() + "'",
                       {"--federation-config", "num-supernodes=3000"});
  BOOST_REQUIRE_MESSAGE(run->wait_for("to start once 3000 nodes are connected", 30) >= 0, run->log());
  wait_joined(*link, 3);
  BOOST_TEST(link->count("(1000) joined from") == 3u);
  BOOST_TEST(procs[1]->count("partitions 1000..1999") >= 1u);
  BOOST_REQUIRE_MESSAGE(procs[2]->wait_for("waiting at the gate", 120) >= 0, procs[2]->log());
  procs[2]->signal(SIGKILL);
  BOOST_REQUIRE(link->wait_for("(1000) at", 10) >= 0);
  std::ofstream{gate};
  BOOST_REQUIRE_MESSAGE(run->wait(300) == 0, run->log());
  auto doc = result();
  BOOST_REQUIRE_EQUAL(doc["rounds"].size(), 2u);
  auto& r1 = doc["rounds"][0]["train"];
  auto& r2 = doc["rounds"][1]["train"];
  BOOST_TEST(r1["sampled"].get<int>() == 3000);
  BOOST_TEST(r1["results"].get<int>() == 3000);
  BOOST_TEST(r1["failures"].get<int>() == 0);
  BOOST_TEST(r2["sampled"].get<int>() == 3000);
  BOOST_TEST(r2["results"].get<int>() == 2000);
  BOOST_TEST(r2["failures"].get<int>() == 1000);
  // The final arrays, pulled as the run wrote them.
  auto id = std::to_string(doc["run_id"].get<uint64_t>());
  auto pull = control("pull", port, {id, "--dir", (dir / "pulled").string()});
  BOOST_REQUIRE_MESSAGE(pull->wait(60) == 0, pull->log());
  std::ifstream in(dir / "pulled" / "final_arrays.txt");
  std::vector<double> got{std::istream_iterator<double>(in), std::istream_iterator<double>()};
  std::vector<int64_t> all(3000), live(2000);
  std::iota(all.begin(), all.end(), 0);
  std::iota(live.begin(), live.end(), 0);
  auto want = stamen::test::expected_arrays({all, live});
  BOOST_REQUIRE_EQUAL(got.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    BOOST_TEST(std::abs(got[i] - want[i]) <= 1e-4 * std::max(1.0, std::abs(want[i])),
               "w[" << i << "] = " << got[i] << ", want " << want[i]);
}

// A run held for its federation's node count: `stamen stop` ends the wait,
// and a superlink told to stop while a run waits goes down at once (its
// grid answers the waiting thread).
BOOST_AUTO_TEST_CASE(a_run_waiting_for_nodes_can_be_stopped_and_does_not_hold_the_superlink) {
  auto [link, port] = superlink();
  auto held = [&] { return detached(port, "", " num-supernodes=5"); };
  auto first = held();
  BOOST_REQUIRE(link->wait_for("waits for 5 nodes (0 connected)", 30) >= 0);
  auto stop = control("stop", port, {first});
  BOOST_REQUIRE_MESSAGE(stop->wait(30) == 0, stop->log());
  BOOST_REQUIRE(link->wait_for("run " + first + " finished:stopped", 30) >= 0);
  held();
  BOOST_REQUIRE(link->wait_for("waits for 5 nodes (0 connected)", 30, 2) >= 0);
  link->signal(SIGTERM);
  BOOST_TEST(link->wait(30) == 0, link->log());
}

BOOST_AUTO_TEST_CASE(a_frozen_supernode_is_detected_by_heartbeat_within_the_timeout) {
  auto [link, port] = superlink({"--heartbeat", "0.2", "--timeout", "1"});
  auto nodes = this->nodes(*link, port, 3, 10);
  // Node 2 is frozen while it is known to be inside its train handler.
  auto gate = dir / "open";
  auto run = this->run("gated", port, "num-server-rounds=2 gate-file='" + gate.string() + "'");
  BOOST_REQUIRE_MESSAGE(nodes[2]->wait_for("waiting at the gate", 60) >= 0, nodes[2]->log());
  nodes[2]->signal(SIGSTOP);
  auto detected = link->wait_for("silent for more than", 10);
  BOOST_TEST_MESSAGE("SIGSTOPped supernode detected after " << detected * 1000 << " ms (timeout 1 s)");
  BOOST_REQUIRE(detected >= 0);
  BOOST_TEST(detected < 10.0);  // a bound against a hang; the benchmark measures it
  std::ofstream{gate};
  nodes[2]->signal(SIGCONT);
  BOOST_REQUIRE_MESSAGE(run->wait(300) == 0, run->log());
  auto doc = result();
  // The round did not wait for its 120 s timeout: the frozen node's
  // instruction came back as a node-unavailable error.
  BOOST_TEST(doc["rounds"][0]["train"]["failures"].get<int>() == 1);
  BOOST_TEST(doc["rounds"][0]["train"]["seconds"].get<double>() < 60);
  // Once thawed, the node finds its connection gone and registers again.
  BOOST_TEST(nodes[2]->wait_for("registered with superlink", 10, 2) >= 0);
}

BOOST_AUTO_TEST_CASE(supernodes_reconnect_with_backoff_after_a_superlink_restart) {
  int port = free_port();
  auto [link, p] = superlink({}, port);
  auto a = supernode(port, "partition-id=0 num-partitions=30");
  auto b = supernode(port, "partition-id=1 num-partitions=30", {"--max-backoff", "1"});
  wait_joined(*link, 2);
  link->signal(SIGKILL);
  link->wait(5);
  // Both say that they retry, with waits that double.
  BOOST_REQUIRE(a->wait_for("reconnecting to", 10, 3) >= 0);
  BOOST_TEST(a->count("in 0.25s") >= 1u);
  BOOST_TEST(a->count("in 0.50s") >= 1u);
  BOOST_TEST(b->wait_for("in 1.00s", 10, 2) >= 0);  // capped by --max-backoff
  auto restarted = superlink({}, port).first;
  auto back = restarted->wait_for("joined from", 60, 2);
  BOOST_TEST_MESSAGE("both supernodes re-registered " << back << " s after the superlink listened again");
  BOOST_REQUIRE(back >= 0);
  BOOST_TEST(back < 30.0);  // the backoff's cap (8 s) plus slack for a loaded machine
  // They serve runs without having been restarted themselves.
  auto run = this->run("echo", port, "size-mb=1 repeats=2 nodes=2 timeout=30.0");
  BOOST_REQUIRE_MESSAGE(run->wait(120) == 0, run->log());
  BOOST_TEST(result()["rounds"][1]["server_evaluate"]["intact"].get<int>() == 2);
}

BOOST_AUTO_TEST_CASE(garbage_and_oversized_frames_are_refused_while_a_run_goes_on) {
  auto [link, port] = superlink();
  auto a = supernode(port, "");
  auto b = supernode(port, "");
  wait_joined(*link, 2);
  auto run = this->run("echo", port, "size-mb=32 repeats=6 nodes=2 timeout=60.0");
  BOOST_REQUIRE(link->wait_for("echo: building", 30) >= 0);
  BOOST_TEST(superlink_hangs_up_on(port, "GET / HTTP/1.1\r\nHost: superlink\r\n\r\n"));
  // A forged length prefix: 1 TiB declared. It is refused from the header alone.
  BOOST_TEST(superlink_hangs_up_on(port, frame_header(2, uint64_t{1} << 40)));
  // A hello far above the handshake limit (64 KiB).
  BOOST_TEST(superlink_hangs_up_on(port, frame_header(2, 16 << 20) + std::string(1 << 16, 'x')));
  // A frame type a peer may not send before saying who it is.
  BOOST_TEST(superlink_hangs_up_on(port, frame_header(7, 0)));
  // A peer of an older wire version (a supernode not yet upgraded).
  BOOST_TEST(superlink_hangs_up_on(port, frame_header(2, 100, 1)));
  // A truncated frame, then the peer leaves (the superlink waits for the
  // rest, so the test's own timeout ends it; what matters is what follows).
  (void) superlink_hangs_up_on(port, frame_header(2, 100) + "abc");
  BOOST_TEST(link->count("bad magic") >= 1u);
  BOOST_TEST(link->count("exceeds the limit") >= 2u);
  BOOST_TEST(link->count("unexpected reply frame") >= 1u);
  BOOST_TEST(link->count("(this build speaks 2)") >= 1u);
  BOOST_TEST(link->running());
  BOOST_REQUIRE_MESSAGE(run->wait(120) == 0, run->log());
  auto doc = result();
  BOOST_REQUIRE_EQUAL(doc["rounds"].size(), 6u);
  for (auto& r : doc["rounds"]) BOOST_TEST(r["server_evaluate"]["intact"].get<int>() == 2);
  // Nothing was allocated for the forged lengths: the superlink holds the
  // run's models, not a terabyte or 16 MiB per bad peer.
  BOOST_TEST_MESSAGE("superlink RSS after the bad peers: " << link->rss_bytes() / 1000000 << " MB");
  BOOST_TEST(link->rss_bytes() / 1000000 < 1000u);
}

BOOST_AUTO_TEST_CASE(a_gigabyte_model_crosses_processes_intact) {
  auto [link, port] = superlink();
  auto node = supernode(port, "");
  wait_joined(*link, 1);
  auto run = this->run("echo", port, "size-mb=1024 repeats=1 nodes=1 timeout=300.0");
  BOOST_REQUIRE_MESSAGE(run->wait(300) == 0, run->log());
  auto r = result()["rounds"][0]["server_evaluate"];
  BOOST_TEST(r["intact"].get<int>() == 1);
  BOOST_TEST(r["bytes"].get<int64_t>() == int64_t{1} << 30);
  BOOST_TEST_MESSAGE("1 GiB there and back in " << r["seconds"].get<double>() << " s");
}

BOOST_AUTO_TEST_CASE(tls_admits_certified_allowed_nodes_and_refuses_the_rest) {
  auto pki = dir / "pki";
  stamen::test::make_test_pki(pki, {"superlink", "node1", "node2", "node3", "client"});
  auto f = [&](const std::string& name) { return (pki / name).string(); };
  auto tls = [&](const std::string& who) {
    return strings{"--root-certificates", f("ca.pem"), "--certificate", f(who + ".pem"),
                   "--private-key", f(who + ".key")};
  };
  // Missing files: nothing starts, and the error names the file.
  {
    child_process bad{strings{stamen_bin, "superlink", "--port", "0", "--root-certificates", f("ca.pem"),
                              "--certificate", f("superlink.pem"), "--private-key", f("nope.key")},
                      log_path("superlink-missing-key")};
    BOOST_TEST(bad.wait(10) == 2);
    BOOST_TEST(bad.count("nope.key") >= 1u);
  }
  auto [link, port] = superlink(tls("superlink") + strings{"--allow-node", f("node1.pem"),
                                                            "--allow-node", f("node2.pem"),
                                                            "--allow-submitter", f("client.pem")});
  auto n1 = supernode(port, "partition-id=0 num-partitions=30", tls("node1"));
  auto n2 = supernode(port, "partition-id=1 num-partitions=30", tls("node2"));
  wait_joined(*link, 2);
  BOOST_TEST(link->count("authenticated as key") == 2u);
  // Signed by the CA but not on the allow-list: refused for good.
  auto n3 = supernode(port, "", tls("node3"));
  BOOST_TEST(n3->wait(10) == 1);
  BOOST_TEST(n3->count("not in the allow-list") >= 1u);
  // Another CA's certificate, and plaintext: the TLS handshake fails, no id.
  auto stranger = supernode(port, "", strings{"--root-certificates", f("other-ca.pem"), "--certificate",
                                              f("stranger.pem"), "--private-key", f("stranger.key")});
  auto plain = supernode(port, "");
  BOOST_TEST(link->wait_for("failed TLS handshake", 10, 2) >= 0);
  BOOST_TEST(link->count("joined from") == 2u);
  // A run over TLS with the submitter's own certificate.
  auto run = this->run("quickstart", port, quickstart_config(1),
                       {"--federation-config", "root-certificates=" + f("ca.pem") + " certificate=" +
                                                   f("client.pem") + " private-key=" + f("client.key")});
  BOOST_REQUIRE_MESSAGE(run->wait(300) == 0, run->log());
  BOOST_TEST(result()["rounds"][0]["train"]["results"].get<int>() == 2);
  BOOST_TEST(link->count("authenticated as key") == 3u);  // the two nodes and the submitter
  // Models of several read chunks each way, which TLS decrypts straight into
  // the frames' buffers: every byte where it belongs.
  auto echo = this->run("echo", port, "size-mb=3 repeats=2 nodes=2 timeout=60.0",
                        {"--federation-config", "root-certificates=" + f("ca.pem") + " certificate=" +
                                                    f("client.pem") + " private-key=" + f("client.key")});
  BOOST_REQUIRE_MESSAGE(echo->wait(120) == 0, echo->log());
  for (auto& r : result()["rounds"]) BOOST_TEST(r["server_evaluate"]["intact"].get<int>() == 2);
  // A key the CA signed but that is not on the submitter allow-list ships
  // no code: the superlink refuses the run before it asks for the bundle.
  auto intruder = this->run("quickstart", port, quickstart_config(1),
                            {"--federation-config", "root-certificates=" + f("ca.pem") + " certificate=" +
                                                        f("node3.pem") + " private-key=" + f("node3.key")});
  BOOST_TEST(intruder->wait(60) == 1);
  BOOST_TEST(intruder->count("refused the run: submitter key") == 1u);
  BOOST_TEST(intruder->count("is not in the allow-list") == 1u);
  BOOST_TEST(link->count("stored bundle") == 2u);  // the quickstart's and echo's
  // A node's id comes from its key: restarted, node 1 gets the same id back.
  auto id1 = n1->word_after(" as node ");  // "registered with superlink HOST:PORT as node N"
  BOOST_REQUIRE(!id1.empty());
  n1->signal(SIGKILL);
  BOOST_REQUIRE(link->wait_for("disconnected", 10) >= 0);
  n1 = supernode(port, "partition-id=0 num-partitions=30", tls("node1"));
  BOOST_REQUIRE(link->wait_for("joined from", 15, 3) >= 0);
  BOOST_TEST(link->count("node " + id1 + " joined") == 2u);
  // A plaintext submission to the TLS port is refused.
  auto plain_run = this->run("echo", port, "size-mb=1 repeats=1 nodes=1 timeout=5.0");
  BOOST_TEST(plain_run->wait(30) == 1);
}

BOOST_AUTO_TEST_CASE(a_renewed_ca_file_takes_effect_for_the_next_connection) {
  // The superlink reads its TLS files once per change, not per connection:
  // a file replaced in place (a renewed certificate) counts from the next
  // connection on, without a restart.
  auto pki = dir / "pki";
  stamen::test::make_test_pki(pki, {"superlink", "client"});
  auto f = [&](const std::string& name) { return (pki / name).string(); };
  fs::copy_file(pki / "ca.pem", pki / "ca-live.pem");
  auto [link, port] = superlink(strings{"--root-certificates", f("ca-live.pem"), "--certificate",
                                        f("superlink.pem"), "--private-key", f("superlink.key"),
                                        "--allow-submitter", f("client.pem")});
  // The stranger trusts the superlink's CA, but its own certificate comes
  // from the other CA, which the superlink does not trust yet.
  auto stranger_tls = strings{"--root-certificates", f("ca.pem"), "--certificate", f("stranger.pem"),
                              "--private-key", f("stranger.key")};
  auto refused = supernode(port, "", stranger_tls);
  BOOST_REQUIRE(link->wait_for("failed TLS handshake", 15) >= 0);
  refused->signal(SIGKILL);
  refused->wait(10);
  BOOST_TEST(link->count("joined from") == 0u);
  // Now the superlink trusts the other CA instead.
  fs::copy_file(pki / "other-ca.pem", pki / "ca-live.pem.new");
  fs::rename(pki / "ca-live.pem.new", pki / "ca-live.pem");
  auto admitted = supernode(port, "", stranger_tls);
  BOOST_TEST(link->wait_for("joined from", 15) >= 0);
  BOOST_TEST(link->count("authenticated as key") == 1u);
}

BOOST_AUTO_TEST_CASE(bundles_reach_nodes_that_never_saw_the_app_and_a_tampered_one_is_refused) {
  auto state = dir / "state";
  // A relative --state-dir (each run's thread changes its own working
  // directory; the superlink's paths must not move with it).
  auto link = std::make_unique<child_process>(
      strings{"/bin/sh", "-c", "cd '" + dir.string() + "' && exec " + stamen_bin +
                                   " superlink --port 0 --state-dir state --insecure-accept-bundles"},
      log_path("superlink"));
  BOOST_REQUIRE_MESSAGE(link->wait_for("listening on ", 15) >= 0, link->log());
  auto port = std::stoi(link->word_after("listening on "));
  auto a = supernode(port, "partition-id=0");
  auto b = supernode(port, "partition-id=1");
  wait_joined(*link, 2);
  // Neither node has seen the app: each fetches the bundle the submitter
  // sent once, and trains.
  auto first = this->run("gated", port, "num-server-rounds=1");
  BOOST_REQUIRE_MESSAGE(first->wait(120) == 0, first->log() + a->log());
  BOOST_TEST(result()["rounds"][0]["train"]["results"].get<int>() == 2);
  BOOST_TEST(first->count("Sending app bundle") == 1u);
  BOOST_TEST(link->count("stored bundle") == 1u);
  BOOST_TEST(link->count("sending bundle") == 2u);
  for (auto* n : {a.get(), b.get()}) BOOST_TEST(n->count("installed bundle") == 1u);
  auto hash = link->word_after("stored bundle ");  // "<first 12 digits>..."
  BOOST_REQUIRE(hash.size() > 3);
  hash = hash.substr(0, hash.size() - 3);

  // The same app again with a third node that has never seen it: the
  // superlink and the two nodes use what they hold, the newcomer fetches.
  auto c = supernode(port, "partition-id=2");
  wait_joined(*link, 3);
  auto second = this->run("gated", port, "num-server-rounds=1");
  BOOST_REQUIRE_MESSAGE(second->wait(120) == 0, second->log() + c->log());
  BOOST_TEST(result()["rounds"][0]["train"]["results"].get<int>() == 3);
  BOOST_TEST(second->count("Sending app bundle") == 0u);
  BOOST_TEST(link->count("is already stored") == 1u);
  BOOST_TEST(link->count("sending bundle") == 3u);
  for (auto* n : {a.get(), b.get()}) BOOST_TEST(n->count("is in the cache") == 1u);
  BOOST_TEST(c->count("installed bundle") == 1u);

  // Tampered with on the superlink's disk: a node that fetches it checks
  // the bytes against the hash, refuses them, and answers with an error
  // (a failure to the strategy); it stays up, and the others train.
  fs::path stored;
  for (auto& e : fs::directory_iterator(state / "bundles"))
    if (e.path().extension() == ".bundle" && e.path().filename().string().rfind(hash, 0) == 0) stored = e.path();
  BOOST_REQUIRE(!stored.empty());
  {
    std::fstream f(stored, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-1, std::ios::end);
    char last = 0;
    f.get(last);
    f.seekp(-1, std::ios::end);
    f.put(static_cast<char>(last ^ 0x5a));
  }
  auto d = supernode(port, "partition-id=3");
  wait_joined(*link, 4);
  auto third = this->run("gated", port, "num-server-rounds=1");
  BOOST_REQUIRE_MESSAGE(third->wait(120) == 0, third->log() + d->log());
  auto train = result()["rounds"][0]["train"];
  BOOST_TEST(train["results"].get<int>() == 3);
  BOOST_TEST(train["failures"].get<int>() == 1);
  BOOST_TEST(train["failure_reasons"].dump().find("tampered with or corrupted") != std::string::npos,
             train.dump());
  BOOST_TEST(d->count("cannot serve run") == 1u);
  BOOST_TEST(d->count("refused: its") == 1u);  // "bundle H... refused: its N bytes hash to ..."
  BOOST_TEST(d->wait(0.1) == -1);              // still running
}

BOOST_AUTO_TEST_CASE(a_superlink_without_tls_takes_no_bundle_unless_told_and_a_node_neither) {
  // Plaintext, not told to take bundles from anyone: the run is refused
  // with the way out named.
  auto p = std::make_unique<child_process>(strings{stamen_bin, "superlink", "--port", "0"}, log_path("superlink"));
  BOOST_REQUIRE(p->wait_for("listening on ", 15) >= 0);
  auto port = std::stoi(p->word_after("listening on "));
  auto refused = this->run("gated", port, "num-server-rounds=1");
  BOOST_TEST(refused->wait(60) == 1);
  BOOST_TEST(refused->count("accepts app bundles only from an authenticated submitter") == 1u);
  BOOST_TEST(p->count("stored bundle") == 0u);
  // A plaintext node not told to take bundles answers the run with errors
  // saying why, and stays up.
  auto [link, port2] = superlink();
  auto careful = std::make_unique<child_process>(
      strings{stamen_bin, "supernode", "--superlink", "127.0.0.1:" + std::to_string(port2), "--node-config",
              "partition-id=0", "--bundle-cache", (dir / "careful").string()},
      log_path("supernode"));
  auto other = supernode(port2, "partition-id=1");
  wait_joined(*link, 2);
  auto run = this->run("gated", port2, "num-server-rounds=1");
  BOOST_REQUIRE_MESSAGE(run->wait(120) == 0, run->log());
  auto train = result()["rounds"][0]["train"];
  BOOST_TEST(train["results"].get<int>() == 1);
  BOOST_TEST(train["failures"].get<int>() == 1);
  BOOST_TEST(train["failure_reasons"].dump().find("has not authenticated the superlink") != std::string::npos,
             train.dump());
  BOOST_TEST(careful->wait(0.1) == -1);
  BOOST_TEST(!fs::exists(dir / "careful"));  // nothing was fetched or written
}

BOOST_AUTO_TEST_CASE(a_node_that_cannot_load_a_bundle_answers_with_the_reason_and_stays_up) {
  // Only the superlink finds the library the app needs.
  auto p = std::make_unique<child_process>(
      strings{"/usr/bin/env", std::string{"LD_LIBRARY_PATH="} + STAMEN_TEST_HIDDEN_LIB_DIR, stamen_bin, "superlink",
              "--port", "0", "--insecure-accept-bundles"},
      log_path("superlink"));
  BOOST_REQUIRE(p->wait_for("listening on ", 15) >= 0);
  auto port = std::stoi(p->word_after("listening on "));
  auto a = supernode(port, "partition-id=0");
  auto b = supernode(port, "partition-id=1");
  wait_joined(*p, 2);
  auto run = this->run("broken", port, "");
  BOOST_TEST(run->wait(120) == 1);  // every train reply failed
  // Each node says why, answers with it (a failure to the strategy), and
  // stays up; the next run is served.
  for (auto* n : {a.get(), b.get()}) {
    BOOST_TEST(n->count("libstamen_test_missing.so: cannot open shared object file") >= 1u, n->log());
    BOOST_TEST(n->wait(0.1) == -1);
  }
  auto error = result()["error"].get<std::string>();
  BOOST_TEST(error.find("every train reply of the run failed") != std::string::npos, error);
  BOOST_TEST(error.find("libstamen_test_missing.so: cannot open shared object file") != std::string::npos, error);
  BOOST_TEST(run->count("libstamen_test_missing.so") >= 2u);  // each node's failure, in the run's log
  auto good = this->run("gated", port, "num-server-rounds=1");
  BOOST_REQUIRE_MESSAGE(good->wait(120) == 0, good->log());
  BOOST_TEST(result()["rounds"][0]["train"]["results"].get<int>() == 2);
}

BOOST_AUTO_TEST_CASE(a_superlink_queues_runs_serves_ls_log_stop_pull_and_keeps_them_across_a_restart) {
  auto state = dir / "state";
  auto gate = [&](const std::string& name) { return (dir / name).string(); };
  auto [link, port] = superlink({"--state-dir", state.string()});
  auto a = supernode(port, "partition-id=0");
  auto b = supernode(port, "partition-id=1");
  wait_joined(*link, 2);

  // One run at a time (the default): the first waits at its gate, the
  // second is pending behind it.
  auto first = detached(port, "num-server-rounds=2 gate-file='" + gate("gate-1") + "'");
  auto second = detached(port, "num-server-rounds=1");
  BOOST_REQUIRE(a->wait_for("waiting at the gate", 60) >= 0);
  auto runs = ls(port);
  BOOST_TEST(runs.at(first)["status"].get<std::string>() == "running");
  BOOST_TEST(runs.at(second)["status"].get<std::string>() == "pending");
  // `log --follow` of the pending run prints it as it goes and ends with it.
  auto follow = control("log", port, {second, "--follow"});
  std::ofstream{gate("gate-1")};
  BOOST_REQUIRE_MESSAGE(follow->wait(120) == 0, follow->log());
  BOOST_TEST(out(follow.get()).find("configure_train: Sampled 2 nodes") != std::string::npos, out(follow.get()));
  BOOST_TEST(out(follow.get()).find("finished:completed") != std::string::npos);
  runs = ls(port);
  BOOST_TEST(runs.at(first)["status"].get<std::string>() == "finished:completed");
  BOOST_TEST(runs.at(first)["rounds"].get<int>() == 2);
  BOOST_TEST(runs.at(second)["status"].get<std::string>() == "finished:completed");
  BOOST_TEST(runs.at(first)["started_at"].get<double>() <= runs.at(second)["started_at"].get<double>());
  BOOST_TEST(runs.at(first)["ended_at"].get<double>() <= runs.at(second)["started_at"].get<double>());

  // `pull`: the ServerApp's file, written in the run's directory.
  auto pulled = dir / "pulled";
  auto pull = control("pull", port, {first, "--dir", pulled.string()});
  BOOST_REQUIRE_MESSAGE(pull->wait(30) == 0, pull->log());
  auto w = stamen::test::slurp(pulled / "final_arrays.txt");
  auto want = stamen::test::expected_after({0, 1}, 2);  // FedAvg of the two nodes, twice
  std::ostringstream expect;
  for (auto x : want) expect << static_cast<float>(x) << '\n';
  BOOST_TEST(w == expect.str());
  // The ServerApp's thread works in the run's directory, unless the
  // machine forbids a thread its own (unshare(CLONE_FS); some container
  // profiles do), which the superlink then says.
  if (link->count("relative paths resolve in the superlink's directory") == 0)
    BOOST_TEST(stamen::test::slurp(pulled / "cwd_is_run_dir.txt") == "yes");
  else
    BOOST_TEST_MESSAGE("this machine gives no thread a working directory of its own");

  // `stop`: a running run ends after the phase in flight (here the train
  // phase of round 2, cut short), as stopped.
  auto third = detached(port, "num-server-rounds=5 gate-round=2 gate-file='" + gate("gate-3") + "'");
  BOOST_REQUIRE(a->wait_for("waiting at the gate", 60, 2) >= 0);
  auto stop = control("stop", port, {third});
  BOOST_REQUIRE_MESSAGE(stop->wait(30) == 0, stop->log());
  std::ofstream{gate("gate-3")};
  BOOST_REQUIRE(link->wait_for("finished:stopped", 60) >= 0);
  runs = ls(port);
  BOOST_TEST(runs.at(third)["status"].get<std::string>() == "finished:stopped");
  BOOST_TEST(runs.at(third)["rounds"].get<int>() < 5);
  auto again = control("stop", port, {third});
  BOOST_TEST(again->wait(30) == 1);  // "run N has finished:stopped"
  // Nothing of a stopped run is lost: its log and its file stay.
  auto stopped_log = control("log", port, {third});
  BOOST_TEST(stopped_log->wait(30) == 1);  // the run did not complete
  BOOST_TEST(out(stopped_log.get()).find("[ROUND 1/5]") != std::string::npos, out(stopped_log.get()));
  BOOST_TEST(out(stopped_log.get()).find("finished:stopped") != std::string::npos);
  auto stopped_pull = control("pull", port, {third, "--dir", (dir / "stopped").string()});
  BOOST_REQUIRE_MESSAGE(stopped_pull->wait(30) == 0, stopped_pull->log());
  BOOST_TEST(fs::exists(dir / "stopped" / "final_arrays.txt"));
  auto unknown = control("log", port, {"12345"});
  BOOST_TEST(unknown->wait(30) == 1);
  BOOST_TEST(unknown->count("no run 12345 on this superlink") == 1u);

  // Restarted on the same state directory, the superlink lists every run
  // and still serves their logs and files; now two runs go at once.
  link->signal(SIGTERM);
  BOOST_REQUIRE(link->wait(30) == 0);
  auto restarted = std::make_unique<child_process>(
      strings{stamen_bin, "superlink", "--port", std::to_string(port), "--state-dir", state.string(),
              "--insecure-accept-bundles", "--max-concurrent-runs", "2"},
      log_path("superlink-restarted"));
  BOOST_REQUIRE(restarted->wait_for("listening on ", 15) >= 0);
  BOOST_REQUIRE(restarted->wait_for("joined from", 30, 2) >= 0);
  runs = ls(port);
  BOOST_TEST(runs.size() == 3u);
  BOOST_TEST(runs.at(third)["status"].get<std::string>() == "finished:stopped");
  auto old_log = control("log", port, {first});
  BOOST_REQUIRE_MESSAGE(old_log->wait(30) == 0, old_log->log());
  BOOST_TEST(out(old_log.get()).find("[ROUND 2/2]") != std::string::npos, out(old_log.get()));
  // `stamen report RUN_ID`: the finished run's result, as the restarted
  // superlink kept it, charted.
  auto report = [&](const std::string& id, const fs::path& out_dir) {
    return std::make_unique<child_process>(
        strings{stamen_bin, "report", id, "--out", out_dir.string(), "--app",
                (source_dir / "tests" / "cli" / "gated").string(), "--federation-config",
                "address=127.0.0.1:" + std::to_string(port)},
        log_path("report"));
  };
  auto reported = report(first, dir / "report");
  BOOST_REQUIRE_MESSAGE(reported->wait(60) == 0, reported->log());
  auto html = stamen::test::slurp(dir / "report" / "report.html");
  BOOST_TEST(html.find("run " + first) != std::string::npos);
  // eval_loss is FedAvg's weighted mean of p over nodes 0 and 1 (weights 1
  // and 2): 2/3 in both rounds, in the chart's data.
  std::smatch loss;
  BOOST_REQUIRE_MESSAGE(
      std::regex_search(html, loss, std::regex{"<figure id=\"evaluate-eval_loss\" data-series='([^']*)'>"}),
      html.substr(0, 2000));
  auto data = loss[1].str();
  for (size_t at = 0; (at = data.find("&quot;", at)) != std::string::npos;) data.replace(at, 6, "\""), ++at;
  auto series = nlohmann::json::parse(data)["run " + first];
  BOOST_REQUIRE_EQUAL(series.size(), 2u);
  BOOST_TEST(std::abs(series[1][1].get<double>() - 2.0 / 3) < 1e-9, series.dump());
  // A stopped run reports the rounds it completed; an unknown id, nothing.
  auto stopped = report(third, dir / "report-stopped");
  BOOST_TEST(stopped->wait(60) == 0, stopped->log());
  auto no_such = report("12345", dir / "report-unknown");
  BOOST_TEST(no_such->wait(60) == 1);
  BOOST_TEST(no_such->count("run 12345: no run 12345 on this superlink") == 1u, no_such->log());
  BOOST_TEST(!fs::exists(dir / "report-unknown" / "report.html"));
  auto fourth = detached(port, "num-server-rounds=1 gate-file='" + gate("gate-4") + "'");
  auto fifth = detached(port, "num-server-rounds=1 gate-file='" + gate("gate-4") + "'");
  // Each node holds both runs' trainings at the gate, one after the other
  // on its one compute thread: both runs are running.
  BOOST_REQUIRE(restarted->wait_for("starting run " + fifth, 60) >= 0);
  runs = ls(port);
  BOOST_TEST(runs.at(fourth)["status"].get<std::string>() == "running");
  BOOST_TEST(runs.at(fifth)["status"].get<std::string>() == "running");
  std::ofstream{gate("gate-4")};
  for (auto& id : {fourth, fifth}) {
    auto f = control("log", port, {id, "--follow"});
    BOOST_REQUIRE_MESSAGE(f->wait(120) == 0, f->log());
  }
  runs = ls(port);
  for (auto& id : {fourth, fifth}) {
    BOOST_TEST(runs.at(id)["status"].get<std::string>() == "finished:completed");
    BOOST_TEST(runs.at(id)["rounds"].get<int>() == 1);
  }
}

BOOST_AUTO_TEST_CASE(a_run_survives_a_sigkilled_superlink_and_ends_as_if_never_interrupted) {
  auto state = dir / "state";
  int port = free_port();
  auto [link, p] = superlink({"--state-dir", state.string()}, port);
  std::vector<std::unique_ptr<child_process>> nodes;
  for (int i = 0; i < 3; ++i) nodes.push_back(supernode(port, "partition-id=" + std::to_string(i)));
  wait_joined(*link, 3);
  // Every node is held inside its round-2 train handler; round 1 is
  // checkpointed by then.
  auto gate = (dir / "gate").string();
  auto id = detached(port, "num-server-rounds=4 min-nodes=3 gate-round=2 gate-file='" + gate + "'");
  for (auto& n : nodes) BOOST_REQUIRE_MESSAGE(n->wait_for("waiting at the gate", 60) >= 0, n->log());
  BOOST_REQUIRE(fs::exists(state / "runs" / id / "checkpoint.bin"));
  link->signal(SIGKILL);
  BOOST_REQUIRE(link->wait(30) == 128 + SIGKILL);
  std::ofstream{gate};  // the handlers finish; their replies have nowhere to go
  auto started = std::chrono::steady_clock::now();
  auto restarted = std::make_unique<child_process>(
      strings{stamen_bin, "superlink", "--port", std::to_string(port), "--state-dir", state.string(),
              "--insecure-accept-bundles"},
      log_path("superlink-restarted"));
  BOOST_REQUIRE_MESSAGE(restarted->wait_for("[ROUND 2/4]", 60) >= 0, restarted->log());
  std::chrono::duration<double> to_round = std::chrono::steady_clock::now() - started;
  BOOST_TEST_MESSAGE("restart to the resumed round starting: " << to_round.count() << " s");
  BOOST_TEST(restarted->count("resuming run " + id + " at round 2") == 1u, restarted->log());
  auto follow = control("log", port, {id, "--follow"});
  BOOST_REQUIRE_MESSAGE(follow->wait(120) == 0, follow->log() + restarted->log());
  auto runs = ls(port);
  BOOST_TEST(runs.at(id)["status"].get<std::string>() == "finished:completed");
  BOOST_TEST(runs.at(id)["rounds"].get<int>() == 4);
  // The final arrays: FedAvg over the three nodes, four times, exactly.
  auto pulled = dir / "pulled";
  auto pull = control("pull", port, {id, "--dir", pulled.string()});
  BOOST_REQUIRE_MESSAGE(pull->wait(30) == 0, pull->log());
  std::ostringstream expect;
  for (auto x : stamen::test::expected_after({0, 1, 2}, 4)) expect << static_cast<float>(x) << '\n';
  BOOST_TEST(stamen::test::slurp(pulled / "final_arrays.txt") == expect.str());
  // Its log holds both halves: before the crash and after.
  BOOST_TEST(out(follow.get()).find("[ROUND 1/4]") != std::string::npos);
  BOOST_TEST(out(follow.get()).find("Resuming from a checkpoint at round 2/4") != std::string::npos);

  // A run whose checkpoint is damaged fails with the reason when the
  // superlink restarts; the superlink starts anyway.
  std::remove(gate.c_str());
  auto second = detached(port, "num-server-rounds=4 min-nodes=3 gate-round=2 gate-file='" + gate + "'");
  for (auto& n : nodes) BOOST_REQUIRE(n->wait_for("waiting at the gate", 60, 2) >= 0);
  restarted->signal(SIGKILL);
  BOOST_REQUIRE(restarted->wait(30) == 128 + SIGKILL);
  { std::ofstream{state / "runs" / second / "checkpoint.bin", std::ios::trunc} << "garbage"; }
  std::ofstream{gate};
  auto third = std::make_unique<child_process>(
      strings{stamen_bin, "superlink", "--port", std::to_string(port), "--state-dir", state.string(),
              "--insecure-accept-bundles"},
      log_path("superlink-third"));
  BOOST_REQUIRE(third->wait_for("listening on ", 15) >= 0);
  runs = ls(port);
  BOOST_TEST(runs.at(second)["status"].get<std::string>() == "finished:failed");
  BOOST_TEST(runs.at(second)["reason"].get<std::string>().find("checkpoint.bin' is unreadable") != std::string::npos,
             runs.at(second).dump());
  BOOST_TEST(runs.at(id)["status"].get<std::string>() == "finished:completed");
}

// Prometheus' text format, by its rules: HELP and TYPE lines, then samples
// "name{labels} value" of a declared family; counters end in _total.
// Returns the samples by their full name (labels included), or fails.
std::map<std::string, double> parse_prometheus(const std::string& text) {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::istringstream in{text};
  std::string line;
  auto name_ok = [](const std::string& n) {
    if (n.empty() || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_' || n[0] == ':')) return false;
    return std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':'; });
  };
  while (std::getline(in, line)) {
    BOOST_REQUIRE_MESSAGE(!line.empty(), "empty line in the exposition");
    std::istringstream words{line};
    if (line.rfind("# ", 0) == 0) {
      std::string hash, kind, name, rest;
      words >> hash >> kind >> name >> rest;
      BOOST_REQUIRE_MESSAGE(kind == "HELP" || kind == "TYPE", line);
      BOOST_REQUIRE_MESSAGE(name_ok(name), line);
      if (kind == "TYPE") {
        BOOST_REQUIRE_MESSAGE(rest == "counter" || rest == "gauge" || rest == "histogram", line);
        BOOST_REQUIRE_MESSAGE(rest != "counter" || (name.size() > 6 && name.substr(name.size() - 6) == "_total"), line);
        types[name] = rest;
      }
      continue;
    }
    auto brace = line.find('{');
    auto space = line.rfind(' ');
    BOOST_REQUIRE_MESSAGE(space != std::string::npos, line);
    auto name = line.substr(0, std::min(brace, space));
    BOOST_REQUIRE_MESSAGE(name_ok(name), line);
    auto family = name;
    for (auto* suffix : {"_bucket", "_sum", "_count"})
      if (!types.count(family) && family.size() > std::strlen(suffix) &&
          family.substr(family.size() - std::strlen(suffix)) == suffix)
        family = family.substr(0, family.size() - std::strlen(suffix));
    BOOST_REQUIRE_MESSAGE(types.count(family) == 1, "no TYPE for " << line);
    if (brace != std::string::npos) BOOST_REQUIRE_MESSAGE(line[space - 1] == '}', line);
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

// Sends raw bytes to a port and reads what comes back until the peer closes.
std::string raw_http(int port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "(no connection)";
  // A bound on every read: a server waiting for the rest of a request
  // gives up after its own read timeout (5 s) and closes.
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

BOOST_AUTO_TEST_CASE(metrics_and_the_api_follow_nodes_and_rounds_and_bad_http_changes_nothing) {
  auto [link, port] = superlink({"--http-port", "0"});
  auto http_port = std::stoi(link->word_after("127.0.0.1:"));
  httplib::Client http{"127.0.0.1", http_port};
  auto metrics = [&] {
    auto r = http.Get("/metrics");
    BOOST_REQUIRE(r);
    BOOST_REQUIRE_EQUAL(r->status, 200);
    BOOST_TEST(r->get_header_value("Content-Type").find("text/plain") == 0u);
    return parse_prometheus(r->body);
  };
  auto m = metrics();
  BOOST_TEST(m.at("stamen_nodes_connected") == 0);
  BOOST_TEST(m.at("stamen_rounds_completed_total") == 0);
  auto a = supernode(port, "partition-id=0");
  auto b = supernode(port, "partition-id=1");
  wait_joined(*link, 2);
  m = metrics();
  BOOST_TEST(m.at("stamen_nodes_connected") == 2);
  BOOST_TEST(m.at("stamen_node_joins_total") == 2);
  auto id = detached(port, "num-server-rounds=2");
  auto follow = control("log", port, {id, "--follow"});
  BOOST_REQUIRE_MESSAGE(follow->wait(120) == 0, follow->log());
  m = metrics();
  BOOST_TEST(m.at("stamen_rounds_completed_total") == 2);
  BOOST_TEST(m.at("stamen_round_duration_seconds_count") == 2);
  BOOST_TEST(m.at("stamen_replies_total{phase=\"train\"}") == 4);
  BOOST_TEST(m.at("stamen_replies_total{phase=\"evaluate\"}") == 4);
  BOOST_TEST(m.at("stamen_runs{status=\"finished:completed\"}") == 1);
  BOOST_TEST(m.at("stamen_checkpoint_duration_seconds_count") == 2);
  BOOST_TEST(m.at("stamen_received_bytes_total") > 0);
  BOOST_TEST(m.at("stamen_sent_bytes_total") > 0);
  // The API: runs, one run with its per-round metrics, nodes.
  auto runs = nlohmann::json::parse(http.Get("/api/runs")->body);
  BOOST_REQUIRE_EQUAL(runs.size(), 1u);
  BOOST_TEST(std::to_string(runs[0]["run_id"].get<uint64_t>()) == id);
  auto run = nlohmann::json::parse(http.Get(("/api/runs/" + id).c_str())->body);
  BOOST_TEST(run["status"].get<std::string>() == "finished:completed");
  BOOST_TEST(run["history"].size() == 4u);  // train and evaluate metrics of 2 rounds
  BOOST_TEST(run["history"][1]["metrics"].contains("eval_loss"), run.dump());
  BOOST_TEST(http.Get("/api/runs/12345")->status == 404);
  // A node killed: the gauge follows, the registry remembers it.
  b->signal(SIGKILL);
  BOOST_REQUIRE(link->wait_for("disconnected", 10) >= 0);
  m = metrics();
  BOOST_TEST(m.at("stamen_nodes_connected") == 1);
  auto nodes = nlohmann::json::parse(http.Get("/api/nodes")->body);
  BOOST_REQUIRE(nodes["connected"].size() == 1u);
  BOOST_TEST(nodes["known"].size() == 2u);
  // The survivor's activity: one run, its 2 train and 2 evaluate replies,
  // no failure, and a heartbeat within the link's timeout (2 s).
  auto& survivor = nodes["connected"][0];
  BOOST_TEST(survivor["runs_served"].get<int>() == 1, survivor.dump());
  BOOST_TEST(survivor["replies"].get<int>() == 4, survivor.dump());
  BOOST_TEST(survivor["failures"].get<int>() == 0, survivor.dump());
  BOOST_TEST(survivor["last_heartbeat"].get<double>() > survivor["connected_since"].get<double>(), survivor.dump());
  // Pages: ?offset=&limit= over both lists, with their totals; a bad value is ignored.
  auto page = nlohmann::json::parse(http.Get("/api/nodes?offset=1&limit=1")->body);
  BOOST_TEST(page["connected"].size() == 0u, page.dump());
  BOOST_TEST(page["connected_total"].get<int>() == 1);
  BOOST_TEST(page["known"].size() == 1u);
  BOOST_TEST(page["known_total"].get<int>() == 2);
  BOOST_TEST(nlohmann::json::parse(http.Get("/api/nodes?limit=x1")->body)["limit"].get<int>() == 1000);
  // Bad HTTP: garbage, a huge header, paths that climb; the superlink stays
  // up and serves nothing it does not mean to.
  BOOST_TEST(raw_http(http_port, "\x16\x03\x01garbage\r\n\r\n").find("200 OK") == std::string::npos);
  BOOST_TEST(raw_http(http_port, "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(1 << 20, 'a') + "\r\n\r\n")
                 .find("200 OK") == std::string::npos);
  for (auto* path : {"/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/api/runs/../../state.db", "/api/runs/1e9"}) {
    auto r = raw_http(http_port, std::string{"GET "} + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    BOOST_TEST(r.find("404") != std::string::npos, path << ": " << r.substr(0, 60));
    BOOST_TEST(r.find("root:") == std::string::npos);
  }
  BOOST_TEST(metrics().at("stamen_nodes_connected") == 1);
  BOOST_TEST(link->wait(0.1) == -1);
}

BOOST_AUTO_TEST_CASE(a_headless_browser_renders_the_dashboards_curves_during_a_run) {
  auto [link, port] = superlink({"--http-port", "0"});
  auto http_port = link->word_after("127.0.0.1:");
  auto a = supernode(port, "partition-id=0");
  auto b = supernode(port, "partition-id=1");
  wait_joined(*link, 2);
  // Held in round 3: two rounds of curves are there, and the run goes on.
  auto gate = (dir / "gate").string();
  auto id = detached(port, "num-server-rounds=3 gate-round=3 gate-file='" + gate + "'");
  BOOST_REQUIRE(a->wait_for("waiting at the gate", 60) >= 0);
  auto browser = stamen::test::shell(
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
      "--virtual-time-budget=5000 --dump-dom http://127.0.0.1:" + http_port + "/",
      dir);
  std::ofstream{gate};
  auto& dom = browser.out;
  if (browser.code != 0 && dom.empty()) {
    BOOST_TEST_MESSAGE("skipped: chromium cannot start here (" << browser.code << "): " << browser.err.substr(0, 300));
    return;
  }
  BOOST_TEST(dom.find("<td>" + id + "</td>") != std::string::npos, dom.substr(0, 3000));
  BOOST_TEST(dom.find("<td>running</td>") != std::string::npos);
  // The evaluate curve of eval_loss, drawn over the two rounds done.
  std::smatch m;
  std::regex curve{"data-metric=\"evaluate eval_loss\" data-points=\"(\\d+)\"[^>]*>.*?<polyline[^>]*points=\"([^\"]+)\""};
  BOOST_REQUIRE_MESSAGE(std::regex_search(dom, m, curve), dom.substr(0, 3000));
  BOOST_TEST(m[1] == "2");
  BOOST_TEST(std::count(m[2].first, m[2].second, ',') == 2);  // two x,y points
  // The nodes table.
  BOOST_TEST(dom.find("::ffff:127.0.0.1") != std::string::npos);
  auto follow = control("log", port, {id, "--follow"});
  BOOST_REQUIRE_MESSAGE(follow->wait(120) == 0, follow->log());
}

BOOST_AUTO_TEST_CASE(a_superlink_refuses_a_state_database_it_cannot_read_and_leaves_it_alone) {
  auto state = dir / "state";
  fs::create_directories(state);
  std::string junk(3000, 'x');
  std::ofstream{state / "state.db"} << junk;
  child_process bad{strings{stamen_bin, "superlink", "--port", "0", "--state-dir", state.string()},
                    log_path("superlink")};
  BOOST_TEST(bad.wait(30) == 1);
  BOOST_TEST(bad.count("state.db' is unreadable") == 1u, bad.log());
  BOOST_TEST(bad.count("listening on") == 0u);
  BOOST_TEST(stamen::test::slurp(state / "state.db") == junk);
}

BOOST_AUTO_TEST_CASE(a_network_partition_between_namespaces_is_detected) {
  // Real hosts in their own network namespaces, joined by a veth pair; the
  // link is cut under a live connection. Needs root and `ip netns`.
  auto ns = "stamen" + std::to_string(getpid());
  auto sh = [](const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); };
  if (geteuid() != 0 || sh("ip netns add " + ns + "a") != 0) {
    BOOST_TEST_MESSAGE("skipped: network namespaces are unavailable here (needs root and ip netns)");
    return;
  }
  struct cleanup {
    std::function<void()> f;
    ~cleanup() { f(); }
  } guard{[&] {
    sh("ip netns del " + ns + "a");
    sh("ip netns del " + ns + "b");
  }};
  bool ok = sh("ip netns add " + ns + "b") == 0 &&
            sh("ip link add " + ns + "x netns " + ns + "a type veth peer name " + ns + "y netns " + ns + "b") == 0 &&
            sh("ip -n " + ns + "a addr add 10.231.0.1/24 dev " + ns + "x") == 0 &&
            sh("ip -n " + ns + "b addr add 10.231.0.2/24 dev " + ns + "y") == 0 &&
            sh("ip -n " + ns + "a link set " + ns + "x up") == 0 &&
            sh("ip -n " + ns + "b link set " + ns + "y up") == 0 &&
            sh("ip -n " + ns + "a link set lo up") == 0 && sh("ip -n " + ns + "b link set lo up") == 0 &&
            // Running a program inside needs more privileges than creating
            // the namespace (it remounts /sys); containers often lack them.
            sh("ip netns exec " + ns + "b /bin/true") == 0;
  if (!ok) {
    BOOST_TEST_MESSAGE("skipped: cannot build a veth link between namespaces here");
    return;
  }
  child_process link{strings{"/usr/bin/ip", "netns", "exec", ns + "a", stamen_bin, "superlink", "--port", "9092",
                             "--heartbeat", "0.2", "--timeout", "1"},
                     log_path("superlink-ns")};
  BOOST_REQUIRE(link.wait_for("listening on", 15) >= 0);
  child_process node{strings{"/usr/bin/ip", "netns", "exec", ns + "b", stamen_bin, "supernode",
                             "--superlink", "10.231.0.1:9092"},
                     log_path("supernode-ns")};
  BOOST_REQUIRE_MESSAGE(link.wait_for("joined from", 15) >= 0, link.log() + node.log());
  BOOST_REQUIRE(sh("ip -n " + ns + "b link set " + ns + "y down") == 0);
  auto detected = link.wait_for("silent for more than", 10);
  BOOST_TEST_MESSAGE("partition detected after " << detected * 1000 << " ms (timeout 1 s)");
  BOOST_TEST(detected >= 0);
  BOOST_TEST(detected < 10.0);  // a bound against a hang; the benchmark measures it
  BOOST_TEST(node.wait_for("the superlink was silent", 10) >= 0);
  // Healed, the node comes back on its own.
  BOOST_REQUIRE(sh("ip -n " + ns + "b link set " + ns + "y up") == 0);
  BOOST_TEST(link.wait_for("joined from", 20, 2) >= 0);
}

BOOST_AUTO_TEST_SUITE_END()
