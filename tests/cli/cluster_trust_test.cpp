// What a superlink believes and of whom (the trust model of
// docs/manual/security.md): a proof is good for its own connection only; a
// run is controlled by its submitter and the admin keys; a node runs the
// code of the submitters it trusts and re-checks what it cached; a peer that
// has not said who it is costs neither memory nor a lasting connection; and
// nothing a peer sends, invalid UTF-8 included, ends the superlink.
#include "tests/cli/cluster_fixture.hpp"

#include <boost/test/unit_test.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "actors/handshake.hpp"
#include "actors/node_identity.hpp"
#include "actors/wire_frame.hpp"
#include "messages/codec.hpp"
#include "messages/message.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/test_pki.hpp"

namespace {

namespace wire = stamen::wire;

// A peer that speaks the wire protocol by hand, over plaintext or a TLS
// session of its own (OpenSSL directly, so that the test controls what is
// signed and on which connection). Reads time out after 20 s: a guard
// against a hang, never what a test waits for.
class raw_peer {
 public:
  explicit raw_peer(int port, const stamen::tls_files* tls = nullptr) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    timeval tv{20, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (tls == nullptr) return;
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION);
    SSL_CTX_load_verify_locations(ctx_, tls->ca.c_str(), nullptr);
    SSL_CTX_use_certificate_file(ctx_, tls->certificate.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(ctx_, tls->key.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      ERR_print_errors_fp(stderr);
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
  }
  ~raw_peer() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }
  raw_peer(const raw_peer&) = delete;
  raw_peer& operator=(const raw_peer&) = delete;

  bool tls_ok() const { return ssl_ != nullptr; }

  bool send_bytes(const void* data, size_t n) {
    auto* p = static_cast<const char*>(data);
    while (n > 0) {
      auto k = ssl_ != nullptr ? SSL_write(ssl_, p, static_cast<int>(n))
                               : ::send(fd_, p, n, MSG_NOSIGNAL);
      if (k <= 0) return false;
      p += k;
      n -= static_cast<size_t>(k);
    }
    return true;
  }
  bool send_frame(wire::frame_type t, const std::vector<std::byte>& payload) {
    auto h = wire::encode_header(t, payload.size());
    return send_bytes(h.data(), h.size()) && send_bytes(payload.data(), payload.size());
  }

  /// The next frame, or none once the superlink closed the connection.
  std::optional<std::pair<wire::frame_type, stamen::buffer>> read_frame() {
    std::string h(wire::header_size, '\0');
    if (!read_exactly(h.data(), h.size())) return std::nullopt;
    auto header = wire::decode_header(reinterpret_cast<const std::byte*>(h.data()), uint64_t{1} << 30);
    if (!header) return std::nullopt;
    auto [buf, fill] = stamen::buffer::allocate_for_overwrite(static_cast<size_t>(header->length));
    if (!read_exactly(reinterpret_cast<char*>(fill), static_cast<size_t>(header->length))) return std::nullopt;
    return std::pair{header->type, std::move(buf)};
  }
  /// The first frame of a type other than ping.
  std::optional<std::pair<wire::frame_type, stamen::buffer>> read_non_ping() {
    for (;;) {
      auto f = read_frame();
      if (!f || f->first != wire::frame_type::ping) return f;
    }
  }
  /// The superlink's challenge (its nonce), the first frame on a connection.
  std::string nonce() {
    auto f = read_frame();
    BOOST_REQUIRE(f && f->first == wire::frame_type::challenge);
    auto c = wire::read_challenge(f->second);
    BOOST_REQUIRE(c);
    return c->nonce;
  }
  /// The TLS exporter's value for this session, as the superlink computes
  /// it (transport.cpp's label): what a proof binds to.
  std::string binding() const {
    static constexpr char label[] = "EXPORTER-stamen-peer-proof";
    std::string out(32, '\0');
    BOOST_REQUIRE(SSL_export_keying_material(ssl_, reinterpret_cast<unsigned char*>(out.data()), out.size(),
                                             label, sizeof label - 1, nullptr, 0, 0) == 1);
    return out;
  }
  /// True once the superlink closed the connection (reads return nothing).
  bool closed() {
    char c;
    for (;;) {
      auto n = ssl_ != nullptr ? SSL_read(ssl_, &c, 1) : ::recv(fd_, &c, 1, 0);
      if (n <= 0) return n == 0 || ssl_ != nullptr || (errno != EAGAIN && errno != EWOULDBLOCK);
    }
  }

 private:
  bool read_exactly(char* p, size_t n) {
    while (n > 0) {
      auto k = ssl_ != nullptr ? SSL_read(ssl_, p, static_cast<int>(std::min<size_t>(n, 1 << 20)))
                               : ::recv(fd_, p, n, 0);
      if (k <= 0) return false;
      p += k;
      n -= static_cast<size_t>(k);
    }
    return true;
  }
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

std::vector<std::byte> hello_with(const stamen::node_proof& proof, uint32_t nodes = 1) {
  wire::hello h;
  h.certificate = proof.certificate;
  h.signature = proof.signature;
  h.nodes = nodes;
  return wire::write_hello(h);
}

std::string refusal(const stamen::buffer& payload) {
  wire::reader r{payload};
  auto why = r.str("why");
  return why ? *why : std::string{};
}

// /proc/PID/status's field (kB), e.g. "VmHWM:" (the peak resident set).
uint64_t status_kb(const child_process& p, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(p.pid()) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stoull(line.substr(field.size()));
  return 0;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(cluster, cluster_fixture)

// A proof signs the connection's nonce and its TLS exporter: made for one
// connection and sent on another (relayed by a man in the middle, or
// replayed), it does not verify; on its own connection it does.
BOOST_AUTO_TEST_CASE(a_relayed_or_replayed_proof_is_refused_on_another_connection) {
  auto pki = dir / "pki";
  stamen::test::make_test_pki(pki, {"superlink", "node1"});
  auto f = [&](const std::string& name) { return (pki / name).string(); };
  auto [link, port] = superlink(strings{"--root-certificates", f("ca.pem"), "--certificate", f("superlink.pem"),
                                        "--private-key", f("superlink.key")});
  stamen::tls_files node1{f("ca.pem"), f("node1.pem"), f("node1.key")};
  raw_peer a{port, &node1}, b{port, &node1}, c{port, &node1};
  BOOST_REQUIRE(a.tls_ok() && b.tls_ok() && c.tls_ok());
  auto nonce_a = a.nonce(), nonce_b = b.nonce(), nonce_c = c.nonce();
  BOOST_TEST(nonce_a != nonce_b);
  // A's proof relayed on B: the nonce and the binding are A's.
  auto for_a = stamen::prove_identity(node1, stamen::challenge_to_sign(nonce_a, a.binding()));
  BOOST_REQUIRE(for_a);
  BOOST_REQUIRE(b.send_frame(wire::frame_type::hello, hello_with(*for_a)));
  auto answer_b = b.read_non_ping();
  BOOST_REQUIRE(answer_b);
  BOOST_TEST((answer_b->first == wire::frame_type::refuse));
  BOOST_TEST(refusal(answer_b->second).find("signature does not match") != std::string::npos,
             refusal(answer_b->second));
  // C's own nonce, but bound to A's session (a relay that forwards the
  // challenge and signs elsewhere): refused too.
  auto mixed = stamen::prove_identity(node1, stamen::challenge_to_sign(nonce_c, a.binding()));
  BOOST_REQUIRE(mixed);
  BOOST_REQUIRE(c.send_frame(wire::frame_type::hello, hello_with(*mixed)));
  auto answer_c = c.read_non_ping();
  BOOST_REQUIRE(answer_c);
  BOOST_TEST((answer_c->first == wire::frame_type::refuse));
  // On its own connection the same key is taken.
  BOOST_REQUIRE(a.send_frame(wire::frame_type::hello, hello_with(*for_a)));
  auto answer_a = a.read_non_ping();
  BOOST_REQUIRE(answer_a);
  BOOST_TEST((answer_a->first == wire::frame_type::accept));
  BOOST_TEST(link->count("joined from") == 1u);
  BOOST_TEST(link->running());
}

// A connection that has not said who it is: capped in number and in time;
// a hello claiming millions of nodes, or a fetch before any hello, is
// refused; and a node that owes no reply cannot make the superlink hold a
// frame's worth of memory by claiming one.
BOOST_AUTO_TEST_CASE(an_unproven_or_unentitled_peer_costs_no_memory_and_no_lasting_connection) {
  auto [link, port] = superlink({"--max-pending-connections", "3", "--handshake-timeout", "2",
                                 "--max-link-nodes", "1000"});
  // Taking code from anyone (the fixture's plaintext superlink) is for
  // this host only: no --bind, so loopback.
  BOOST_TEST(link->count("bound to 127.0.0.1 only") == 1u);
  {
    raw_peer p1{port}, p2{port}, p3{port};
    for (auto* p : {&p1, &p2, &p3}) (void)p->nonce();
    raw_peer p4{port};
    BOOST_TEST(p4.closed());
    BOOST_TEST(link->wait_for("have not said who they are yet", 10) >= 0);
    // Pings do not keep them: each is dropped at the handshake timeout.
    BOOST_TEST(link->wait_for("no hello, submit or control within", 30, 3) >= 0);
    for (auto* p : {&p1, &p2, &p3}) BOOST_TEST(p->closed());
  }
  {
    raw_peer many{port};
    (void)many.nonce();
    BOOST_REQUIRE(many.send_frame(wire::frame_type::hello, hello_with({}, 1u << 22)));
    auto answer = many.read_non_ping();
    BOOST_REQUIRE(answer);
    BOOST_TEST((answer->first == wire::frame_type::refuse));
    BOOST_TEST(refusal(answer->second).find("at most 1000 nodes") != std::string::npos, refusal(answer->second));
  }
  {
    raw_peer early{port};
    (void)early.nonce();
    wire::writer w;
    w.str(std::string(64, 'a'));
    BOOST_REQUIRE(early.send_frame(wire::frame_type::fetch, w.bytes()));
    BOOST_TEST(early.closed());
    BOOST_TEST(link->wait_for("unexpected fetch frame", 10) >= 0);
  }
  // A registered node that owes nothing sends a reply header claiming 2 GiB
  // and the bytes: they are read and dropped as they come, the peak
  // resident set does not move, and the link stays up.
  raw_peer node{port};
  (void)node.nonce();
  BOOST_REQUIRE(node.send_frame(wire::frame_type::hello, hello_with({})));
  auto accepted = node.read_non_ping();
  BOOST_REQUIRE(accepted);
  BOOST_REQUIRE((accepted->first == wire::frame_type::accept));
  auto peak_before = status_kb(*link, "VmHWM:");
  const uint64_t claimed = uint64_t{2} << 30;
  auto h = wire::encode_header(wire::frame_type::reply, claimed);
  BOOST_REQUIRE(node.send_bytes(h.data(), h.size()));
  std::string chunk(1 << 20, '\0');
  for (uint64_t sent = 0; sent < claimed; sent += chunk.size()) BOOST_REQUIRE(node.send_bytes(chunk.data(), chunk.size()));
  BOOST_REQUIRE(link->wait_for("while owing none", 60) >= 0);
  auto peak_after = status_kb(*link, "VmHWM:");
  BOOST_TEST_MESSAGE("superlink peak RSS " << peak_before / 1024 << " MiB before the claim, " << peak_after / 1024
                                          << " MiB after");
  BOOST_TEST(peak_after - peak_before < 64u * 1024, peak_after - peak_before << " kB");
  auto next = node.read_frame();  // the superlink's next ping: the link is up
  BOOST_REQUIRE(next);
  BOOST_TEST((next->first == wire::frame_type::ping));
  BOOST_TEST(link->count("disconnected") == 0u);
  BOOST_TEST(link->running());
}

// Per-run authorization: a run's submitter stops, reads and pulls it; an
// admin key may too; another allowed submitter may not. Nodes that trust
// one submitter's key run its bundles and refuse another's.
BOOST_AUTO_TEST_CASE(a_run_is_controlled_by_its_submitter_and_admins_and_nodes_run_trusted_code_only) {
  auto pki = dir / "pki";
  stamen::test::make_test_pki(pki, {"superlink", "node1", "alice", "bob", "admin"});
  auto f = [&](const std::string& name) { return (pki / name).string(); };
  auto tls = [&](const std::string& who) {
    return strings{"--root-certificates", f("ca.pem"), "--certificate", f(who + ".pem"),
                   "--private-key", f(who + ".key")};
  };
  auto as = [&](const std::string& who) {
    return " root-certificates=" + f("ca.pem") + " certificate=" + f(who + ".pem") + " private-key=" +
           f(who + ".key");
  };
  auto [link, port] = superlink(tls("superlink") + strings{"--allow-submitter", f("alice.pem"),
                                                            "--allow-submitter", f("bob.pem"),
                                                            "--admin-key", f("admin.pem")});
  auto node = supernode(port, "partition-id=0", tls("node1") + strings{"--trust-submitter", f("alice.pem")});
  wait_joined(*link, 1);
  auto gate = (dir / "gate").string();
  auto id = detached(port, "min-nodes=1 num-server-rounds=1 gate-file=" + gate, as("alice"));
  BOOST_REQUIRE(node->wait_for("waiting at the gate", 120) >= 0);
  BOOST_TEST(node->count("signed by trusted submitter key") == 1u);
  // One value (`=`): the option takes several, and the app directory follows.
  auto tls_of = [&](const std::string& who) { return strings{"--federation-config=" + as(who).substr(1)}; };
  for (auto verb : {"log", "stop", "pull"}) {
    auto p = control(verb, port, strings{id} + tls_of("bob"));
    BOOST_TEST(p->wait(60) == 1, verb);
    BOOST_TEST(p->count("may not control it") == 1u, p->log());
  }
  auto admin_log = control("log", port, strings{id} + tls_of("admin"));
  (void)admin_log->wait(60);  // 1: the run has not completed (yet)
  BOOST_TEST(admin_log->count("may not control it") == 0u, admin_log->log());
  BOOST_TEST(out(admin_log.get()).find("starting run " + id) != std::string::npos, out(admin_log.get()));
  auto stop = control("stop", port, strings{id} + tls_of("alice"));
  BOOST_TEST(stop->wait(60) == 0, stop->log());
  { std::ofstream{gate}; }
  BOOST_REQUIRE(link->wait_for("run " + id + " finished:stopped", 120) >= 0);
  // Bob's own run: allowed at the superlink, refused by the node, which
  // trusts Alice's key only, and answers with the reason.
  auto bobs = detached(port, "min-nodes=1 num-server-rounds=1", as("bob"));
  BOOST_REQUIRE(node->wait_for("cannot serve run " + bobs, 120) >= 0);
  BOOST_TEST(node->count("refusing the run's app bundle: bundle signer key") == 1u, node->log());
  BOOST_TEST(node->count("is not in the allow-list") == 1u);
  // His own run is his to control (stopped, or already failed for want
  // of a node that would run it).
  auto bob_log = control("log", port, strings{bobs} + tls_of("bob"));
  (void)bob_log->wait(60);
  BOOST_TEST(bob_log->count("may not control it") == 0u, bob_log->log());
  BOOST_TEST(out(bob_log.get()).find("starting run " + bobs) != std::string::npos);
  BOOST_TEST(node->running());
  BOOST_TEST(link->running());
}

// A node loads a cached bundle only after checking it again: a file changed
// in its cache since it was unpacked makes it fetch the bundle anew.
BOOST_AUTO_TEST_CASE(a_cached_bundle_changed_on_disk_is_fetched_again_before_it_is_loaded) {
  auto [link, port] = superlink();
  auto cache = dir / "node-cache";
  auto node = supernode(port, "partition-id=0", {}, cache.string());
  wait_joined(*link, 1);
  auto first = this->run("gated", port, "min-nodes=1 num-server-rounds=1");
  BOOST_REQUIRE_MESSAGE(first->wait(120) == 0, first->log());
  BOOST_TEST(node->count("installed bundle") == 1u);
  fs::path toml;
  for (auto& e : fs::recursive_directory_iterator(cache))
    if (e.path().filename() == "stamen.toml") toml = e.path();
  BOOST_REQUIRE(!toml.empty());
  { std::ofstream{toml, std::ios::app} << "\n# changed after it was unpacked\n"; }
  auto second = this->run("gated", port, "min-nodes=1 num-server-rounds=1");
  BOOST_REQUIRE_MESSAGE(second->wait(120) == 0, second->log() + node->log());
  BOOST_TEST(result()["rounds"][0]["train"]["results"].get<int>() == 1);
  BOOST_TEST(node->count("is not the bundle's") == 1u, node->log());
  BOOST_TEST(node->count("installed bundle") == 2u);
}

// Bytes from a peer are any bytes: a run whose app name is not UTF-8 is
// listed (the bytes replaced) by the API and by `stamen ls`, before and
// after a restart of the superlink that stored it.
BOOST_AUTO_TEST_CASE(a_run_named_in_invalid_utf8_is_listed_before_and_after_a_restart) {
  auto state = dir / "state";
  int http_port = free_port();
  auto [link, port] = superlink({"--state-dir", state.string(), "--http-port", std::to_string(http_port)});
  auto node = supernode(port, "partition-id=0");
  wait_joined(*link, 1);
  auto first = this->run("gated", port, "min-nodes=1 num-server-rounds=1");
  BOOST_REQUIRE_MESSAGE(first->wait(120) == 0, first->log());
  auto runs = ls(port);
  BOOST_REQUIRE_EQUAL(runs.size(), 1u);
  auto hash = runs.begin()->second["bundle"].get<std::string>();
  // The same bundle, submitted by hand under a name that is not UTF-8.
  stamen::record_dict content;
  stamen::config_record rc;
  rc.insert_or_assign("num-server-rounds", int64_t{1});
  rc.insert_or_assign("min-nodes", int64_t{1});
  content.insert_or_assign("run_config", rc);
  auto msg = stamen::make_instruction(std::move(content), "query", stamen::server_node_id);
  BOOST_REQUIRE(msg);
  auto encoded = stamen::encode(*msg, stamen::codec_options{});
  BOOST_REQUIRE(encoded);
  {
    raw_peer submitter{port};
    (void)submitter.nonce();
    wire::writer w;
    w.str("bad\xff\xfe" "name");
    w.str("stamen_app_gated");
    w.blob(*encoded);
    w.str(hash);
    w.str("");
    w.str("");
    w.u64(0);
    w.str("");
    BOOST_REQUIRE(submitter.send_frame(wire::frame_type::submit, w.bytes()));
    auto accepted = submitter.read_non_ping();
    BOOST_REQUIRE(accepted);
    BOOST_REQUIRE((accepted->first == wire::frame_type::accepted));
  }
  // It ends (it fails: a run config by hand lacks the app's defaults); what
  // matters is what lists it.
  BOOST_REQUIRE(link->wait_for(" finished:", 120, 2) >= 0);
  auto listed = [&] {
    httplib::Client http{"127.0.0.1", http_port};
    auto res = http.Get("/api/runs");
    BOOST_REQUIRE(res);
    BOOST_TEST(res->status == 200);
    auto doc = nlohmann::json::parse(res->body);
    BOOST_TEST(doc.size() == 2u);
    BOOST_TEST(res->body.find("bad\xef\xbf\xbd") != std::string::npos, res->body);
    BOOST_TEST(ls(port).size() == 2u);
  };
  listed();
  link->signal(SIGTERM);
  BOOST_REQUIRE(link->wait(30) == 0);
  auto again = superlink({"--state-dir", state.string(), "--http-port", std::to_string(http_port)}, port);
  link = std::move(again.first);
  listed();
  BOOST_TEST(link->running());
}

// A ServerApp is code from a submitter: what it throws, std::exception or
// not, fails its run with the reason while the superlink and the other runs
// go on; and what it leaves in its directory, a symlink out of it included,
// is pulled as files, never followed.
BOOST_AUTO_TEST_CASE(a_serverapp_throwing_a_non_standard_exception_fails_its_run_only_and_pull_follows_no_link) {
  auto [link, port] = superlink({"--max-concurrent-runs", "2"});
  auto node = supernode(port, "partition-id=0");
  wait_joined(*link, 1);
  auto thrower = this->run("gated", port, "min-nodes=1 server-throws=1");
  BOOST_TEST(thrower->wait(120) == 1);
  BOOST_TEST(thrower->count("not derived from std::exception") >= 1u, thrower->log());
  BOOST_TEST(link->running());
  auto id = detached(port, "min-nodes=1 num-server-rounds=1 plant-symlink=1");
  BOOST_REQUIRE(link->wait_for("run " + id + " finished:completed", 120) >= 0);
  auto pulled = dir / "pulled";
  auto pull = control("pull", port, {id, "--dir", pulled.string()});
  BOOST_REQUIRE_MESSAGE(pull->wait(60) == 0, pull->log());
  BOOST_TEST(fs::exists(pulled / "final_arrays.txt"));
  BOOST_TEST(!fs::exists(pulled / "outside"));
  BOOST_TEST(pull->count("outside (a symbolic link)") == 1u, pull->log());
  BOOST_TEST(link->running());
}

// The first Ctrl-C stops in order; while that waits (here on a ClientApp
// held at a gate), a second one ends the process at once.
BOOST_AUTO_TEST_CASE(a_second_ctrl_c_ends_a_run_that_is_stopping_at_once) {
  auto gate = (dir / "gate-never").string();
  child_process run{strings{stamen_bin, "run", (source_dir / "tests" / "cli" / "gated").string(), "--federation",
                            "local-simulation", "--run-config", "min-nodes=1 round-timeout=600.0 gate-file=" + gate},
                    log_path("run")};
  BOOST_REQUIRE_MESSAGE(run.wait_for("waiting at the gate", 120) >= 0, run.log());
  run.signal(SIGINT);
  BOOST_REQUIRE(run.wait_for("a second Ctrl-C", 30) >= 0);
  BOOST_TEST(run.running());
  run.signal(SIGINT);
  BOOST_TEST(run.wait(30) == 128 + SIGINT);
  BOOST_TEST(run.count("second stop signal, exiting at once") == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
