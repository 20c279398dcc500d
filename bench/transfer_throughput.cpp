// transfer_throughput: GB/s of a model moved between two processes on
// loopback by the cluster runtime (superlink -> supernode -> superlink, the
// echo app), plain and over TLS, against a raw TCP socket moving the same
// bytes there and back, measured just before each mode (the machine's speed
// drifts). With a breakdown of the round trip: the two encodes (the
// superlink's instruction, the node's reply; timed here on the same bytes),
// the raw transfer, and the rest (framing, copies into and out of the
// socket's buffers, TLS, actors). And the cipher's own speed here: OpenSSL's
// EVP AES-128-GCM (TLS 1.3's suite) over the same bytes in 16 KiB records on
// one core, and the TLS round trip as a fraction of the bound it implies (a
// round trip encrypts and decrypts the model once each way: 4x its bytes),
// so that a reader sees how close TLS is on any CPU.
//   bench_transfer_throughput STAMEN ECHO_APP_DIR [SIZE_MB...]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "bench_util.hpp"
#include "messages/codec.hpp"
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
  size_t lazy_superlink = 0, lazy_node = 0;  // of which released buffers kept for reuse
};

// Bytes of a process's memory that it released with MADV_FREE (buffers kept
// for reuse, which the kernel takes back when memory is short): counted in
// its RSS until then.
size_t lazy_free_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (in >> key) {
    if (key == "LazyFree:" && in >> kb >> unit) return kb * 1024;
    std::getline(in, unit);
  }
  return 0;
}

// Median seconds to encode the echo app's message for `bytes` bytes.
double encode_seconds(size_t bytes) {
  auto [buf, raw] = stamen::buffer::allocate(bytes);
  for (size_t i = 0; i < bytes; i += 4096) raw[i] = std::byte{1};
  stamen::record_dict content;
  content.insert_or_assign(
      "arrays", stamen::array_record{{"w", *stamen::array::make(stamen::dtype::float32,
                                                               {static_cast<int64_t>(bytes / 4)}, buf)}});
  auto msg = *stamen::make_instruction(std::move(content), "query", 2);
  stamen::buffer out;
  return bench::median_time(3, 1, [&] { out = *stamen::encode(msg); });
}

// Seconds for one core to seal `bytes` with AES-128-GCM in TLS-sized
// records (16 KiB, a fresh IV and tag each), median of three.
double cipher_seconds(size_t bytes) {
  constexpr size_t record = 16 << 10;
  std::vector<unsigned char> in(record, 1), out(record + 16), key(16, 7), iv(12, 0);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  // The key is set once, as a TLS session does; each record gets its IV.
  EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), nullptr, key.data(), iv.data());
  auto seal = [&] {
    for (size_t done = 0; done < bytes; done += record) {
      iv[0] = static_cast<unsigned char>(done >> 14);
      int n = 0;
      EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv.data());
      EVP_EncryptUpdate(ctx, out.data(), &n, in.data(), static_cast<int>(std::min(record, bytes - done)));
      EVP_EncryptFinal_ex(ctx, out.data() + n, &n);
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out.data() + record);
    }
  };
  double s = bench::median_time(3, 1, seal);
  EVP_CIPHER_CTX_free(ctx);
  return s;
}

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
  r.lazy_superlink = lazy_free_bytes(link.pid());
  r.lazy_node = lazy_free_bytes(node.pid());
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
    double encode = encode_seconds(bytes);
    double cipher = cipher_seconds(bytes);
    double cipher_bound = 4 * cipher;  // the round trip's AES-GCM work, on one core
    for (bool tls : {false, true}) {
      double raw = raw_tcp_round_trip(bytes, reps);
      double raw_gbps = 2.0 * static_cast<double>(bytes) / raw / 1e9;
      auto r = stamen_round_trip(stamen, app, mb, reps, work, tls ? &pki : nullptr);
      double gbps = r.seconds > 0 ? 2.0 * static_cast<double>(bytes) / r.seconds / 1e9 : 0;
      double target = tls ? 0.5 : 0.8;
      bench::line("transfer_throughput")
          .num("size_mb", static_cast<double>(mb))
          .str("mode", tls ? "tls" : "plain")
          .num("gbps", gbps)
          .num("round_trip_s", r.seconds)
          .num("baseline_raw_tcp_gbps", raw_gbps)
          .num("ratio", gbps / raw_gbps)
          .num("target", target)
          .flag("met", gbps / raw_gbps >= target)
          .num("step_encode_s", encode)
          .num("step_raw_transfer_s", raw)
          .num("step_rest_s", r.seconds - raw - 2 * encode)
          .num("cipher_aes128gcm_gbps", static_cast<double>(bytes) / cipher / 1e9)
          .num("cipher_bound_s", cipher_bound)
          .num("ratio_of_cipher_bound", tls && r.seconds > 0 ? cipher_bound / r.seconds : 0)
          .num("superlink_rss_mb", static_cast<double>(r.rss_superlink) / 1e6)
          .num("superlink_lazy_free_mb", static_cast<double>(r.lazy_superlink) / 1e6)
          .num("node_rss_mb", static_cast<double>(r.rss_node) / 1e6)
          .num("node_lazy_free_mb", static_cast<double>(r.lazy_node) / 1e6)
          .print();
    }
  }
  fs::remove_all(work);
  return 0;
}
