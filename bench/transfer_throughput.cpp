// transfer_throughput: GB/s of a model moved between two processes on
// loopback by the cluster runtime (superlink -> supernode -> superlink, the
// echo app), plain and over TLS, against a raw TCP socket moving the same
// bytes there and back in the same run.
//   bench_transfer_throughput STAMEN ECHO_APP_DIR [SIZE_MB...]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "bench_util.hpp"
#include "../tests/support/child_process.hpp"
#include "../tests/support/test_pki.hpp"

namespace fs = std::filesystem;
using stamen::test::child_process;

namespace {

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    auto k = ::write(fd, p, n);
    if (k <= 0) throw std::runtime_error("write failed");
    p += k, n -= static_cast<size_t>(k);
  }
}

void read_all(int fd, char* p, size_t n) {
  while (n > 0) {
    auto k = ::read(fd, p, n);
    if (k <= 0) throw std::runtime_error("read failed");
    p += k, n -= static_cast<size_t>(k);
  }
}

// The physical baseline: a forked peer reads `bytes` and writes them back on
// a loopback TCP connection; buffers are allocated and touched beforehand,
// the best case for a socket. Median seconds per round trip.
double raw_tcp_round_trip(size_t bytes, int reps) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  listen(lfd, 1);
  socklen_t len = sizeof addr;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::vector<char> buf(bytes, 1);
  pid_t child = fork();
  if (child == 0) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    for (int i = 0; i < reps + 1; ++i) {
      read_all(fd, buf.data(), bytes);
      write_all(fd, buf.data(), bytes);
    }
    _exit(0);
  }
  int fd = accept(lfd, nullptr, nullptr);
  std::vector<char> back(bytes, 0);
  double t = bench::median_time(reps, 1, [&] {
    write_all(fd, buf.data(), bytes);
    read_all(fd, back.data(), bytes);
  });
  close(fd);
  close(lfd);
  waitpid(child, nullptr, 0);
  return t;
}

struct cluster_result {
  double seconds = -1;  // median round trip, first round (warm-up) excluded
  size_t rss_superlink = 0, rss_node = 0;
};

cluster_result stamen_round_trip(const std::string& stamen, const std::string& app, size_t mb,
                                 int reps, const fs::path& work, const fs::path* pki) {
  // Without TLS both ends must be told to run a shipped app bundle.
  std::vector<std::string> tls_link{"--insecure-accept-bundles"}, tls_node{"--insecure-accept-bundles"}, tls_run;
  if (pki) {
    auto p = [&](const char* f) { return (*pki / f).string(); };
    tls_link = {"--root-certificates", p("ca.pem"), "--certificate", p("superlink.pem"),
                "--private-key", p("superlink.key"), "--allow-submitter", p("client.pem")};
    tls_node = {"--root-certificates", p("ca.pem"), "--certificate", p("node.pem"),
                "--private-key", p("node.key")};
    tls_run = {"--federation-config", "root-certificates=" + p("ca.pem") + " certificate=" +
                                          p("client.pem") + " private-key=" + p("client.key")};
  }
  auto with = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  auto tag = std::string{pki ? "tls" : "plain"} + "-" + std::to_string(mb);
  child_process link{with({stamen, "superlink", "--port", "0"}, tls_link),
                     (work / ("superlink-" + tag + ".log")).string()};
  if (link.wait_for("listening on ", 10) < 0) throw std::runtime_error("superlink did not start");
  auto address = "127.0.0.1:" + link.word_after("listening on ");
  child_process node{with({stamen, "supernode", "--superlink", address, "--bundle-cache",
                           (work / ("cache-" + tag)).string()},
                          tls_node),
                     (work / ("node-" + tag + ".log")).string()};
  if (link.wait_for("joined from", 10) < 0) throw std::runtime_error("node did not join");
  auto out = work / ("run-" + tag + ".json");
  child_process run{with({stamen, "run", app, "--federation", "local-cluster", "--federation-config",
                          "address=" + address, "--run-config",
                          "size-mb=" + std::to_string(mb) + " repeats=" + std::to_string(reps + 1),
                          "--format", "json"},
                         tls_run),
                    (work / ("run-" + tag + ".log")).string(), out.string()};
  cluster_result r;
  if (run.wait(600) != 0) {
    std::cerr << run.log();
    return r;
  }
  r.rss_superlink = link.rss_bytes();
  r.rss_node = node.rss_bytes();
  std::ifstream in(out);
  auto doc = nlohmann::json::parse(in);
  std::vector<double> xs;
  for (auto& round : doc["rounds"])
    if (round["round"].get<int>() > 1) xs.push_back(round["server_evaluate"]["seconds"].get<double>());
  std::sort(xs.begin(), xs.end());
  if (!xs.empty()) r.seconds = xs[xs.size() / 2];
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_transfer_throughput STAMEN ECHO_APP_DIR [SIZE_MB...]\n";
    return 2;
  }
  std::string stamen = argv[1], app = argv[2];
  std::vector<size_t> sizes;
  for (int i = 3; i < argc; ++i) sizes.push_back(std::stoul(argv[i]));
  if (sizes.empty()) sizes = {100, 1024};
  auto work = fs::temp_directory_path() / ("stamen-transfer-" + std::to_string(getpid()));
  fs::create_directories(work);
  auto pki = work / "pki";
  stamen::test::make_test_pki(pki, {"superlink", "node", "client"});
  for (auto mb : sizes) {
    const size_t bytes = mb << 20;
    int reps = mb >= 1024 ? 3 : 5;
    double raw = raw_tcp_round_trip(bytes, reps);
    double raw_gbps = 2.0 * static_cast<double>(bytes) / raw / 1e9;
    for (bool tls : {false, true}) {
      auto r = stamen_round_trip(stamen, app, mb, reps, work, tls ? &pki : nullptr);
      double gbps = r.seconds > 0 ? 2.0 * static_cast<double>(bytes) / r.seconds / 1e9 : 0;
      bench::line("transfer_throughput")
          .num("size_mb", static_cast<double>(mb))
          .str("mode", tls ? "tls" : "plain")
          .num("gbps", gbps)
          .num("round_trip_s", r.seconds)
          .num("baseline_raw_tcp_gbps", raw_gbps)
          .num("ratio", gbps / raw_gbps)
          .num("target", tls ? 0 : 0.7)
          .num("superlink_rss_mb", static_cast<double>(r.rss_superlink) / 1e6)
          .num("node_rss_mb", static_cast<double>(r.rss_node) / 1e6)
          .print();
    }
  }
  fs::remove_all(work);
  return 0;
}
