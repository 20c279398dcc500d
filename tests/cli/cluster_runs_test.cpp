// The superlink as a service: runs queued, `stamen ls`, `log`, `stop`,
// `pull` and `report`, runs kept across a restart and resumed after a
// crash, and a state database it cannot read (the fixture:
// cluster_fixture.hpp).
#include "tests/cli/cluster_fixture.hpp"

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/arithmetic_app.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/shell.hpp"

BOOST_FIXTURE_TEST_SUITE(cluster, cluster_fixture)

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

BOOST_AUTO_TEST_CASE(a_failed_run_hands_its_submitter_the_result_so_far) {
  auto [link, port] = superlink();
  auto a = supernode(port, "partition-id=0");
  auto b = supernode(port, "partition-id=1");
  wait_joined(*link, 2);
  // Both nodes are held inside round 1's train and node b dies there: round
  // 1 counts a result and a failure, and round 2 cannot sample the two nodes
  // that min-nodes asks for, so the run fails after one round.
  auto gate = (dir / "gate").string();
  auto run = this->run("gated", port,
                       "num-server-rounds=3 min-nodes=2 round-timeout=15 gate-round=1 gate-file='" + gate + "'");
  BOOST_REQUIRE_MESSAGE(a->wait_for("waiting at the gate", 60) >= 0, a->log());
  BOOST_REQUIRE_MESSAGE(b->wait_for("waiting at the gate", 60) >= 0, b->log());
  b->signal(SIGKILL);
  BOOST_REQUIRE(b->wait(30) == 128 + SIGKILL);
  std::ofstream{gate};
  BOOST_REQUIRE_MESSAGE(run->wait(120) == 1, run->log());
  auto doc = result();
  auto error = doc["error"].get<std::string>();
  BOOST_TEST(error.find("only 1 of the 2 nodes required by min_available_nodes") != std::string::npos, error);
  BOOST_TEST(run->count("only 1 of the 2 nodes required by min_available_nodes") >= 1u, run->log());
  BOOST_REQUIRE_MESSAGE(doc["rounds"].size() >= 1u, doc.dump());
  auto train = doc["rounds"][0]["train"];
  BOOST_TEST(train["results"].get<int>() == 1, train.dump());
  BOOST_TEST(train["failures"].get<int>() == 1, train.dump());
  BOOST_TEST(doc["run_id"].get<uint64_t>() > 0u);
  // The superlink keeps it: `stamen report RUN_ID` charts it.
  auto runs = ls(port);
  auto id = std::to_string(doc["run_id"].get<uint64_t>());
  BOOST_TEST(runs.at(id)["status"].get<std::string>() == "finished:failed");
  auto report = std::make_unique<child_process>(
      strings{stamen_bin, "report", id, "--out", (dir / "report").string(), "--app",
              (source_dir / "tests" / "cli" / "gated").string(), "--federation-config",
              "address=127.0.0.1:" + std::to_string(port)},
      log_path("report"));
  BOOST_TEST(report->wait(60) == 0, report->log());
  BOOST_TEST(fs::exists(dir / "report" / "report.html"));
}

BOOST_AUTO_TEST_SUITE_END()
