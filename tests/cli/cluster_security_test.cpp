// Who may talk to a superlink and what it takes from them: TLS, node and
// submitter keys, app bundles (shipped, fetched, tampered with, unloadable),
// and peers that send garbage (the fixture: cluster_fixture.hpp).
#include "tests/cli/cluster_fixture.hpp"

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

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
#include <string>
#include <vector>

#include "tests/support/child_process.hpp"
#include "tests/support/test_pki.hpp"

namespace {

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

// A frame header as the wire defines it (actors/wire_frame.hpp), version 3.
std::string frame_header(uint8_t type, uint64_t length, uint8_t version = 3) {
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
  BOOST_TEST(link->count("(this build speaks 3)") >= 1u);
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
  // SecAgg+ over the same TLS links: its keys and shares travel inside them.
  auto secure = this->run("quickstart", port, quickstart_config(1) + " secure-aggregation='secaggplus'",
                          {"--federation-config", "root-certificates=" + f("ca.pem") + " certificate=" +
                                                      f("client.pem") + " private-key=" + f("client.key")});
  BOOST_REQUIRE_MESSAGE(secure->wait(300) == 0, secure->log());
  auto secure_round = result()["rounds"][0]["train"];
  BOOST_TEST(secure_round["results"].get<int>() == 2);
  BOOST_TEST(secure_round["secure_aggregation"]["survivors"].size() == 2u);
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

// A certificate the CA signed for someone else is not the superlink's: a node
// checks the name it connects to (as a DNS or IP subject alternative name),
// or the one it was told, and a pinned key besides.
BOOST_AUTO_TEST_CASE(a_node_refuses_a_superlink_certificate_for_another_name_or_key) {
  auto pki = dir / "pki";
  stamen::test::make_test_pki(pki, {"superlink", "node1", "node2", "node3"});
  auto f = [&](const std::string& name) { return (pki / name).string(); };
  auto tls = [&](const std::string& who) {
    return strings{"--root-certificates", f("ca.pem"), "--certificate", f(who + ".pem"),
                   "--private-key", f(who + ".key")};
  };
  auto [link, port] = superlink(tls("node2"));  // names DNS:node2 only
  auto wrong = supernode(port, "", tls("node1"));
  BOOST_TEST(wrong->wait_for("TLS handshake refused", 30) >= 0);
  BOOST_TEST(link->count("joined from") == 0u);
  wrong->signal(SIGKILL);
  auto named = supernode(port, "", tls("node1") + strings{"--superlink-name", "node2"});
  wait_joined(*link, 1);
  auto pinned_wrong = supernode(port, "", tls("node3") + strings{"--superlink-name", "node2",
                                                                 "--superlink-key", f("node3.pem")});
  BOOST_TEST(pinned_wrong->wait_for("is not the pinned", 30) >= 0);
  auto pinned = supernode(port, "", tls("node3") + strings{"--superlink-name", "node2",
                                                           "--superlink-key", f("node2.pem")});
  wait_joined(*link, 2);
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

BOOST_AUTO_TEST_SUITE_END()
