// The superlink's HTTP side: /metrics in Prometheus' format, the API's runs
// and nodes, HTTP that is not meant for it, and the dashboard in a headless
// browser (the fixture: cluster_fixture.hpp).
#include "tests/cli/cluster_fixture.hpp"

#include <boost/test/unit_test.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>

#include "tests/support/child_process.hpp"
#include "tests/support/shell.hpp"

BOOST_FIXTURE_TEST_SUITE(cluster, cluster_fixture)

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
  // A value that is not a number is refused with the reason, not guessed at.
  auto bad_limit = http.Get("/api/nodes?limit=x1");
  BOOST_TEST(bad_limit->status == 400);
  BOOST_TEST(bad_limit->body.find("limit 'x1' is not a decimal number") != std::string::npos, bad_limit->body);
  // Numbers past 64 bits, in the path or in a query decoded from %3F, used to
  // end the superlink (std::stoull's out_of_range): each is a 400 now.
  for (auto* path : {"/api/runs/99999999999999999999", "/api/nodes?offset=99999999999999999999",
                     "/api/nodes%3Foffset=99999999999999999999"}) {
    auto r = raw_http(http_port, std::string{"GET "} + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    BOOST_TEST((r.find(" 400 ") != std::string::npos || r.find(" 404 ") != std::string::npos),
               path << ": " << r.substr(0, 60));
    BOOST_TEST(link->wait(0.01) == -1, "the superlink ended on " << path);
  }
  BOOST_TEST(http.Get("/api/runs/99999999999999999999")->body.find("larger than 2^64 - 1") != std::string::npos);
  BOOST_TEST(http.Get("/api/nodes?offset=18446744073709551615")->status == 200);
  // Bad HTTP: garbage, a huge header, paths that climb; the superlink stays
  // up and serves nothing it does not mean to.
  BOOST_TEST(raw_http(http_port, "\x16\x03\x01garbage\r\n\r\n").find("200 OK") == std::string::npos);
  BOOST_TEST(raw_http(http_port, "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(1 << 20, 'a') + "\r\n\r\n")
                 .find("200 OK") == std::string::npos);
  for (auto* path : {"/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/api/runs/../../state.db", "/api/runs/1e9"}) {
    auto r = raw_http(http_port, std::string{"GET "} + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    BOOST_TEST((r.find(" 404 ") != std::string::npos || r.find(" 400 ") != std::string::npos),
               path << ": " << r.substr(0, 60));
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
  BOOST_TEST(dom.find("127.0.0.1:") != std::string::npos);  // a node's address
  auto follow = control("log", port, {id, "--follow"});
  BOOST_REQUIRE_MESSAGE(follow->wait(120) == 0, follow->log());
}

BOOST_AUTO_TEST_SUITE_END()
