// Nothing in the protocol compares two hosts' clocks: supernodes whose wall
// clocks are minutes ahead of or behind the superlink's, or whose clock
// steps during a run, train like any other (Debian's faketime; the
// fixture: cluster_fixture.hpp).
#include "tests/cli/cluster_fixture.hpp"

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "tests/support/child_process.hpp"

namespace {

// libfaketime itself, for a clock that a test steps by rewriting a file
// (the faketime command takes one offset for the whole run).
std::string libfaketime() {
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/usr/lib", ec)) {
    auto lib = e.path() / "faketime" / "libfaketime.so.1";
    if (fs::exists(lib, ec)) return lib.string();
  }
  return {};
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(cluster, cluster_fixture)

BOOST_AUTO_TEST_CASE(supernodes_with_clocks_minutes_off_or_stepping_mid_run_train_like_any_other) {
  auto lib = libfaketime();
  BOOST_REQUIRE_MESSAGE(!lib.empty(), "libfaketime is not installed (cmake/do installs Debian's faketime)");
  auto [link, port] = superlink();
  auto node = [&](const std::string& partition, const strings& clock) {
    auto cache = (dir / ("cache-" + partition)).string();
    return std::make_unique<child_process>(
        clock + strings{stamen_bin, "supernode", "--superlink", "127.0.0.1:" + std::to_string(port),
                        "--node-config", "partition-id=" + partition, "--bundle-cache", cache,
                        "--insecure-accept-bundles"},
        log_path("supernode-" + partition));
  };
  // Five minutes ahead and behind: more than the round's timeout (60 s),
  // so a deadline read on the node's own clock would have passed, or be
  // far off, on arrival.
  // libfaketime preloaded through env, which execs: the pid is the node's
  // own, so the test ends it (the faketime command forks its program and a
  // kill of its pid left the node running past the test).
  auto ahead = node("0", {"/usr/bin/env", "LD_PRELOAD=" + lib, "FAKETIME=+300s"});
  auto behind = node("1", {"/usr/bin/env", "LD_PRELOAD=" + lib, "FAKETIME=-300s"});
  // A wall clock that steps, as NTP or an operator may step it: the
  // monotonic clock goes on (as the kernel's does).
  auto offset = dir / "offset";
  { std::ofstream{offset} << "+0\n"; }
  auto stepping = node("2", {"/usr/bin/env", "LD_PRELOAD=" + lib, "FAKETIME_TIMESTAMP_FILE=" + offset.string(),
                             "FAKETIME_NO_CACHE=1", "FAKETIME_DONT_FAKE_MONOTONIC=1"});
  wait_joined(*link, 3);
  auto gate = (dir / "gate").string();
  auto run = this->run("gated", port,
                       "min-nodes=3 num-server-rounds=3 round-timeout=60.0 gate-round=2 gate-file=" + gate);
  BOOST_REQUIRE_MESSAGE(stepping->wait_for("waiting at the gate", 120) >= 0, stepping->log() + run->log());
  // Round 2 is under way: the stepping node's clock jumps 15 minutes ahead.
  { std::ofstream{offset} << "+900s\n"; }
  { std::ofstream{gate}; }
  BOOST_REQUIRE_MESSAGE(run->wait(180) == 0, run->log());
  auto doc = result();
  BOOST_REQUIRE_EQUAL(doc["rounds"].size(), 3u);
  for (auto& r : doc["rounds"]) {
    BOOST_TEST(r["train"]["results"].get<int>() == 3, r.dump());
    BOOST_TEST(r["train"]["failures"].get<int>() == 0);
    BOOST_TEST(r["evaluate"]["results"].get<int>() == 3);
  }
  for (auto* n : {ahead.get(), behind.get(), stepping.get()}) {
    BOOST_TEST(n->count("after its deadline") == 0u, n->log());
    BOOST_TEST(n->count("registered with superlink") == 1u);  // never lost its connection
  }
  BOOST_TEST(link->count("disconnected") == 0u, link->log());
}

BOOST_AUTO_TEST_SUITE_END()
