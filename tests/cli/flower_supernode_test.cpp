// `stamen supernode --protocol flower` against a fake Flower SuperLink: a
// Fleet API server written here from Flower 1.23's protocol, in-process,
// that checks every call's node authentication and every object's id, and
// serves Flower's own bytes (flower_fixtures.json) for the instruction's
// records. The node is the real command, a child process. Every wait is for
// an event (a call the fake saw, a line in the node's log).
#define BOOST_TEST_MODULE stamen_flower_supernode
#include <boost/test/unit_test.hpp>

#include <grpcpp/grpcpp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>

#include "fleet.grpc.pb.h"
#include "messages/flower/fleet_conversion.hpp"
#include "messages/flower/flower_objects.hpp"
#include "messages/flower/flower_records.hpp"
#include "tests/cli/cluster_fixture.hpp"
#include "tests/support/test_pki.hpp"

using namespace stamen;
using namespace stamen::test;
namespace pb = flwr::proto;

namespace {

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

bool verify(const std::string& pem, const std::string& text, const std::string& sig) {
  std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
                                                     &EVP_PKEY_free);
  if (!key) return false;
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  return EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(text.data()), text.size()) == 1;
}

using flower::from_proto;
using flower::to_proto;

// A reply as the fake received it: the PushMessages message and every object pushed.
struct pushed_reply {
  pb::Message proto;
  flower::object_tree tree;
  std::map<std::string, std::string> objects;
  std::set<std::string> wanted;
  bool complete() const { return objects.size() == wanted.size(); }
};

// The Fleet service as Flower 1.23's SuperLink answers a node (only what a
// node calls), with its checks: the three auth headers on every call, a
// signature that verifies, a node id that belongs to the key; a reply whose
// message_id is its tree's root; objects that hash to their ids.
class fake_superlink final : public pb::Fleet::Service {
 public:
  // -- what a test does --------------------------------------------------------
  // Plaintext, or TLS with `cert` and `key` (PEM files) when given.
  void start(int port, const std::string& cert = {}, const std::string& key = {}) {
    grpc::ServerBuilder b;
    std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
    if (!cert.empty()) {
      grpc::SslServerCredentialsOptions ssl;
      ssl.pem_key_cert_pairs.push_back({slurp(key), slurp(cert)});
      creds = grpc::SslServerCredentials(ssl);
    }
    b.AddListeningPort("127.0.0.1:" + std::to_string(port), creds);
    b.RegisterService(this);
    b.SetMaxReceiveMessageSize(std::numeric_limits<int>::max());
    server_ = b.BuildAndStart();
    BOOST_REQUIRE_MESSAGE(server_, "cannot listen on port " << port);
  }
  void stop() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_.reset();
  }
  ~fake_superlink() override { stop(); }

  template <class Pred>
  bool wait(Pred pred, double timeout_s = 90) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return pred(); });
  }
  template <class F>
  auto with(F f) {
    std::lock_guard<std::mutex> guard(mutex_);
    return f();
  }

  // Queues `m` (as objects) for `node`; `tamper` replaces an object's bytes as served.
  std::string send(uint64_t node, const flower::deflated_message& m, const metadata& meta,
                   std::map<std::string, std::string> tamper = {}) {
    std::lock_guard<std::mutex> guard(mutex_);
    pb::Message proto;
    auto* md = proto.mutable_metadata();
    md->set_run_id(meta.run_id);
    md->set_message_id(m.tree.id);
    md->set_src_node_id(1);
    md->set_dst_node_id(node);
    md->set_group_id(meta.group_id);
    md->set_ttl(meta.ttl);
    md->set_message_type(meta.message_type);
    md->set_created_at(meta.created_at);
    proto.mutable_content();
    for (auto& [id, bytes] : m.objects) objects_[id] = bytes;
    for (auto& [id, bytes] : tamper) objects_[id] = bytes;
    pb::ObjectTree tree;
    to_proto(m.tree, &tree);
    queue_[node].emplace_back(proto, tree);
    return m.tree.id;
  }

  // -- what the fake saw (read under `with` or in `wait` predicates) -------------
  std::vector<std::string> registered_keys, activated_keys;
  std::vector<uint64_t> activated_ids, deactivated, unregistered;
  std::map<uint64_t, size_t> heartbeats;
  std::vector<uint64_t> get_runs;
  std::vector<std::string> confirmed;
  std::map<std::string, pushed_reply> replies;  ///< by the instruction's id
  std::vector<std::string> refused;             ///< why calls were refused
  std::map<std::string, pb::Scalar> override_config;
  uint64_t next_node_id = 5678;

  // -- the service --------------------------------------------------------------
  grpc::Status RegisterNode(grpc::ServerContext* c, const pb::RegisterNodeFleetRequest* req,
                            pb::RegisterNodeFleetResponse* resp) override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (auto s = authenticate(c, 0, req->public_key()); !s.ok()) return s;
    if (keys_by_pem_.count(req->public_key()))
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "Public key already in use");
    registered_keys.push_back(req->public_key());
    keys_by_pem_[req->public_key()] = next_node_id++;
    resp->set_node_id(keys_by_pem_[req->public_key()]);
    cv_.notify_all();
    return grpc::Status::OK;
  }
  grpc::Status ActivateNode(grpc::ServerContext* c, const pb::ActivateNodeRequest* req,
                            pb::ActivateNodeResponse* resp) override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (auto s = authenticate(c, 0, req->public_key()); !s.ok()) return s;
    auto it = keys_by_pem_.find(req->public_key());
    if (it == keys_by_pem_.end()) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "Node is not registered");
    if (req->heartbeat_interval() < 10 || req->heartbeat_interval() > 1800)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Invalid heartbeat interval");
    activated_keys.push_back(req->public_key());
    activated_ids.push_back(it->second);
    resp->set_node_id(it->second);
    cv_.notify_all();
    return grpc::Status::OK;
  }
  grpc::Status DeactivateNode(grpc::ServerContext* c, const pb::DeactivateNodeRequest* req,
                              pb::DeactivateNodeResponse*) override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (auto s = authenticate(c, req->node_id()); !s.ok()) return s;
    deactivated.push_back(req->node_id());
    cv_.notify_all();
    return grpc::Status::OK;
  }
  grpc::Status UnregisterNode(grpc::ServerContext* c, const pb::UnregisterNodeFleetRequest* req,
                              pb::UnregisterNodeFleetResponse*) override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (auto s = authenticate(c, req->node_id()); !s.ok()) return s;
    unregistered.push_back(req->node_id());
    cv_.notify_all();
    return grpc::Status::OK;
  }
  grpc::Status SendNodeHeartbeat(grpc::ServerContext* c, const pb::SendNodeHeartbeatRequest* req,
                                 pb::SendNodeHeartbeatResponse* resp) override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (auto s = authenticate(c, req->node().node_id()); !s.ok()) return s;
    ++heartbeats[req->node().node_id()];
    resp->set_success(true);
    cv_.notify_all();
    return grpc::Status::OK;
  }
  grpc::Status PullMessages(grpc::ServerContext* c, const pb::PullMessagesRequest* req,
                            pb::PullMessagesResponse* resp) override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (auto s = authenticate(c, req->node().node_id()); !s.ok()) return s;
    auto& q = queue_[req->node().node_id()];
    if (!q.empty()) {
      *resp->add_messages_list() = q.front().first;
      *resp->add_message_object_trees() = q.front().second;
      q.pop_front();
    }
    return grpc::Status::OK;
  }
  grpc::Status GetRun(grpc::ServerContext* c, const pb::GetRunRequest* req, pb::GetRunResponse* resp) override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (auto s = authenticate(c, req->node().node_id()); !s.ok()) return s;
    get_runs.push_back(req->run_id());
    auto* run = resp->mutable_run();
    run->set_run_id(req->run_id());
    run->set_fab_id("flwrlabs/fmnistapp");
    run->set_fab_version("1.0.0");
    run->set_fab_hash(std::string(64, 'f'));
    for (auto& [k, v] : override_config) (*run->mutable_override_config())[k] = v;
    cv_.notify_all();
    return grpc::Status::OK;
  }
  grpc::Status GetFab(grpc::ServerContext*, const pb::GetFabRequest*, pb::GetFabResponse*) override {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "a Stamen node needs no FAB");
  }
  grpc::Status PullObject(grpc::ServerContext* c, const pb::PullObjectRequest* req, pb::PullObjectResponse* resp) override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (auto s = authenticate(c, req->node().node_id()); !s.ok()) return s;
    auto it = objects_.find(req->object_id());
    resp->set_object_found(it != objects_.end());
    resp->set_object_available(it != objects_.end());
    if (it != objects_.end()) resp->set_object_content(it->second);
    return grpc::Status::OK;
  }
  grpc::Status ConfirmMessageReceived(grpc::ServerContext* c, const pb::ConfirmMessageReceivedRequest* req,
                                      pb::ConfirmMessageReceivedResponse*) override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (auto s = authenticate(c, req->node().node_id()); !s.ok()) return s;
    confirmed.push_back(req->message_object_id());
    return grpc::Status::OK;
  }
  grpc::Status PushMessages(grpc::ServerContext* c, const pb::PushMessagesRequest* req,
                            pb::PushMessagesResponse* resp) override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (auto s = authenticate(c, req->node().node_id()); !s.ok()) return s;
    if (req->messages_list_size() != 1 || req->message_object_trees_size() != 1) {
      refused.push_back("PushMessages without exactly one message and one tree");
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, refused.back());
    }
    pushed_reply r;
    r.proto = req->messages_list(0);
    r.tree = from_proto(req->message_object_trees(0));
    if (r.proto.metadata().message_id() != r.tree.id) refused.push_back("reply message_id is not its tree's root");
    for (auto& id : flower::post_order(r.tree)) {
      r.wanted.insert(id);
      resp->add_objects_to_push(id);
    }
    (*resp->mutable_results())[r.tree.id] = 0;
    pushed_by_id_[r.tree.id] = r.proto.metadata().reply_to_message_id();
    replies[r.proto.metadata().reply_to_message_id()] = std::move(r);
    cv_.notify_all();
    return grpc::Status::OK;
  }
  grpc::Status PushObject(grpc::ServerContext* c, const pb::PushObjectRequest* req, pb::PushObjectResponse* resp) override {
    std::lock_guard<std::mutex> guard(mutex_);
    if (auto s = authenticate(c, req->node().node_id()); !s.ok()) return s;
    resp->set_stored(false);
    if (flower::object_id(req->object_content()) != req->object_id()) {
      refused.push_back("object " + req->object_id() + " does not hash to its id");
      return grpc::Status::OK;
    }
    for (auto& [in_reply_to, r] : replies)
      if (r.wanted.count(req->object_id())) {
        r.objects[req->object_id()] = req->object_content();
        resp->set_stored(true);
      }
    cv_.notify_all();
    return grpc::Status::OK;
  }

 private:
  // Flower's node authentication: the headers, a signature over the
  // timestamp, and (past registration) the node id that belongs to the key.
  grpc::Status authenticate(grpc::ServerContext* c, uint64_t node_id, const std::string& claimed_key = {}) {
    const auto& md = c->client_metadata();
    auto get = [&](const char* k) -> std::optional<std::string> {
      auto it = md.find(k);
      if (it == md.end()) return std::nullopt;
      return std::string(it->second.data(), it->second.size());
    };
    auto pem = get("flwr-public-key-bin"), ts = get("flwr-timestamp"), sig = get("flwr-signature-bin");
    auto refuse = [&](std::string why) {
      refused.push_back(why);
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, why);
    };
    if (!pem || !ts || !sig) return refuse("Missing authentication metadata");
    static const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00)");
    if (!std::regex_match(*ts, iso)) return refuse("timestamp '" + *ts + "' is not Python's isoformat");
    if (!verify(*pem, *ts, *sig)) return refuse("Invalid signature");
    if (!claimed_key.empty()) return claimed_key == *pem ? grpc::Status::OK : refuse("public key is not the header's");
    auto it = keys_by_pem_.find(*pem);
    if (it == keys_by_pem_.end() || it->second != node_id) {
      // Not an error of the node's: a restarted SuperLink knows nobody.
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "Invalid node ID");
    }
    return grpc::Status::OK;
  }

  std::unique_ptr<grpc::Server> server_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, uint64_t> keys_by_pem_;
  std::map<uint64_t, std::deque<std::pair<pb::Message, pb::ObjectTree>>> queue_;
  std::map<std::string, std::string> objects_;
  std::map<std::string, std::string> pushed_by_id_;
};

const nlohmann::json& fixtures() {
  static const nlohmann::json j = [] {
    std::ifstream in(STAMEN_FLOWER_FIXTURES);
    return nlohmann::json::parse(in);
  }();
  return j;
}

// Flower's own train message (its RecordDict, records, array and chunk
// bytes as Flower 1.23 made them), with a Message object made now (so that
// its TTL has not run out), for `node`.
struct instruction {
  flower::deflated_message objects;
  metadata meta;
};

instruction flowers_train(uint64_t node, const std::string& type = "train") {
  const nlohmann::json* f = nullptr;
  for (const auto& c : fixtures()["cases"])
    if (c["name"] == "train") f = &c;
  instruction out;
  for (const auto& [id, hex] : (*f)["objects"].items()) out.objects.objects.emplace(id, unhex(hex.get<std::string>()));
  auto rd_id = (*f)["tree"]["children"][0]["id"].get<std::string>();
  std::function<flower::object_tree(const nlohmann::json&)> tree = [&](const nlohmann::json& t) {
    flower::object_tree x{t["id"].get<std::string>(), {}};
    for (const auto& c : t["children"]) x.children.push_back(tree(c));
    return x;
  };
  out.meta.run_id = 1234;
  out.meta.src_node_id = 1;
  out.meta.dst_node_id = node;
  out.meta.created_at = now_seconds();
  out.meta.ttl = 600;
  out.meta.message_type = type;
  auto body = flower::message_body(out.meta, nullptr);
  auto msg = flower::make_object("Message", {rd_id}, body);
  out.objects.tree = flower::object_tree{flower::object_id(msg), {tree((*f)["tree"]["children"][0])}};
  out.objects.objects.erase((*f)["message_id"].get<std::string>());
  out.objects.objects.emplace(out.objects.tree.id, msg);
  return out;
}

// A Stamen-built instruction (for contents the fixture does not have).
instruction stamen_train(uint64_t node, record_dict content, const std::string& type = "train") {
  instruction out;
  out.meta.run_id = 1234;
  out.meta.src_node_id = 1;
  out.meta.dst_node_id = node;
  out.meta.created_at = now_seconds();
  out.meta.ttl = 600;
  out.meta.message_type = type;
  auto d = flower::deflate(message(out.meta, std::move(content)));
  BOOST_REQUIRE(d);
  out.objects = std::move(*d);
  return out;
}

record_dict train_content(const config_record& config = {{"server-round", int64_t{1}}}) {
  record_dict rd;
  rd.insert_or_assign("arrays", array_record{{"w", array::from_values(dtype::float32, {3}, std::vector<float>{0, 1, 2})}});
  rd.insert_or_assign("config", config);
  return rd;
}

struct flower_fixture {
  fake_superlink link;
  int port = free_port();
  fs::path dir = fs::temp_directory_path() / ("stamen-flower-" + std::to_string(getpid()) + "-" + std::to_string(port));
  std::vector<std::unique_ptr<child_process>> nodes;
  /// How nodes connect: plaintext unless a test says otherwise.
  std::vector<std::string> security{"--insecure"};

  explicit flower_fixture(bool start = true) {
    fs::create_directories(dir);
    if (start) link.start(port);
  }
  ~flower_fixture() {
    for (auto& n : nodes)
      if (n->running()) n->signal(SIGKILL);
  }

  child_process& node(const std::string& partition = "2") {
    auto log = (dir / ("node-" + std::to_string(nodes.size()) + ".log")).string();
    nodes.push_back(std::make_unique<child_process>(
        std::vector<std::string>{stamen_bin, "supernode", "--protocol", "flower", "--superlink",
                                 "127.0.0.1:" + std::to_string(port), "--app", (source_dir / "tests/cli/gated").string(),
                                 "--node-config", "partition-id=" + partition + " num-partitions=4",
                                 "--poll-interval", "0.1", "--heartbeat-interval", "10", "--max-backoff", "0.5"} +
            security,
        log));
    return *nodes.back();
  }

  // Waits for the reply to `id` with all its objects, and reads it back.
  message reply_to(const std::string& id) {
    BOOST_REQUIRE_MESSAGE(link.wait([&] { return link.replies.count(id) && link.replies.at(id).complete(); }),
                          "no complete reply to " << id << "; node log:\n" << nodes.back()->log());
    return link.with([&] {
      const auto& r = link.replies.at(id);
      auto m = flower::inflate(r.tree.id, r.objects);
      BOOST_REQUIRE_MESSAGE(m, (m ? "" : m.error().what));
      BOOST_TEST(r.proto.has_error() == m->has_error());
      BOOST_TEST(r.proto.has_content() == m->has_content(), "exactly one of content and error in PushMessages");
      return *m;
    });
  }
};

std::vector<float> w_of(const message& m) { return m.content().arrays("arrays")->get("w")->to_vector<float>(); }

}  // namespace

BOOST_AUTO_TEST_SUITE(flower_supernode_suite)

BOOST_AUTO_TEST_CASE(a_node_joins_answers_flowers_own_train_message_and_leaves_on_sigterm) {
  flower_fixture f;
  auto& node = f.node();
  BOOST_REQUIRE_MESSAGE(f.link.wait([&] { return !f.link.activated_ids.empty() && f.link.heartbeats[5678] > 0; }),
                        node.log());
  f.link.with([&] {
    BOOST_TEST(f.link.registered_keys.size() == 1u);
    BOOST_TEST(f.link.registered_keys.at(0).find("-----BEGIN PUBLIC KEY-----") == 0u);
    BOOST_TEST(f.link.activated_keys.at(0) == f.link.registered_keys.at(0));
  });
  auto in = flowers_train(5678);
  auto id = f.link.send(5678, in.objects, in.meta);
  auto reply = f.reply_to(id);
  BOOST_REQUIRE(reply.has_content());
  // Node 2 of the arithmetic app adds 3 to Flower's w = arange(6) and weighs itself 3.
  BOOST_TEST(w_of(reply) == (std::vector<float>{3, 4, 5, 6, 7, 8}), boost::test_tools::per_element());
  BOOST_TEST(std::get<int64_t>(*reply.content().metrics("metrics")->get("num-examples")) == 3);
  const auto& m = reply.meta();
  BOOST_TEST(m.reply_to_message_id == id);
  BOOST_TEST(m.src_node_id == 5678u);
  BOOST_TEST(m.dst_node_id == 1u);
  BOOST_TEST(m.run_id == 1234u);
  BOOST_TEST(m.message_type == "train");
  BOOST_TEST(m.ttl > 0);
  BOOST_TEST(m.created_at + m.ttl <= in.meta.created_at + in.meta.ttl + 0.1);
  f.link.with([&] {
    BOOST_TEST(f.link.get_runs == std::vector<uint64_t>{1234});
    BOOST_TEST(f.link.confirmed == std::vector<std::string>{id});
    BOOST_TEST(f.link.refused.empty(), (f.link.refused.empty() ? "" : f.link.refused.front()));
  });
  BOOST_TEST(node.log().find("hash " + std::string(64, 'f')) != std::string::npos, node.log());
  BOOST_TEST(node.log().find("not executed") != std::string::npos);
  // A second message of the same run: no second GetRun, the Context kept (calls = 2).
  auto again = flowers_train(5678);
  auto reply2 = f.reply_to(f.link.send(5678, again.objects, again.meta));
  BOOST_TEST(std::get<int64_t>(*reply2.content().metrics("metrics")->get("calls")) == 2);
  f.link.with([&] { BOOST_TEST(f.link.get_runs.size() == 1u); });

  node.signal(SIGTERM);
  BOOST_TEST(f.link.wait([&] { return !f.link.deactivated.empty() && !f.link.unregistered.empty(); }), node.log());
  BOOST_TEST(node.wait(30) == 0);
  f.link.with([&] {
    BOOST_TEST(f.link.deactivated.at(0) == 5678u);
    BOOST_TEST(f.link.unregistered.at(0) == 5678u);
  });
}

BOOST_AUTO_TEST_CASE(bad_instructions_get_error_replies_that_say_why_and_the_node_stays_up) {
  flower_fixture f;
  auto& node = f.node();
  BOOST_REQUIRE(f.link.wait([&] { return !f.link.activated_ids.empty(); }));
  auto expect_error = [&](const instruction& in, std::map<std::string, std::string> tamper, int64_t code,
                          const std::string& reason) {
    auto reply = f.reply_to(f.link.send(5678, in.objects, in.meta, std::move(tamper)));
    BOOST_REQUIRE_MESSAGE(reply.has_error(), "expected an error reply: " << reason);
    BOOST_TEST(reply.error().code == code);
    BOOST_TEST(reply.error().reason.find(reason) != std::string::npos, reply.error().reason);
  };
  // No handler for query: Flower's CLIENT_APP_RAISED_EXCEPTION.
  expect_error(stamen_train(5678, train_content(), "query"), {}, 2, "query");
  // The handler throws.
  expect_error(stamen_train(5678, train_content({{"raise", std::string("boom")}})), {}, 2, "boom");
  // An array that is not NumPy's (stype torch.Tensor): named, not run.
  {
    auto in = stamen_train(5678, train_content());
    auto& rd = in.objects.tree.children[0];
    auto& ar = rd.children[0];
    auto& arr = ar.children[0];
    auto body = std::string(flower::parse_object(in.objects.objects.at(arr.id))->body);
    body.replace(body.find("numpy.ndarray"), 13, "torch.Tensor");
    // Rebuild the ids from the array up, as a sender that means it would.
    std::vector<std::string> chunk_ids;
    for (auto& c : arr.children) chunk_ids.push_back(c.id);
    auto a = flower::make_object("Array", chunk_ids, body);
    arr.id = flower::object_id(a);
    in.objects.objects[arr.id] = a;
    auto r = flower::make_object("ArrayRecord", {arr.id}, "{\"w\": \"" + arr.id + "\"}");
    ar.id = flower::object_id(r);
    in.objects.objects[ar.id] = r;
    auto d = flower::make_object("RecordDict", {ar.id, rd.children[1].id},
                                 "{\"arrays\": \"" + ar.id + "\", \"config\": \"" + rd.children[1].id + "\"}");
    rd.id = flower::object_id(d);
    in.objects.objects[rd.id] = d;
    auto msg = flower::make_object("Message", {rd.id}, flower::message_body(in.meta, nullptr));
    in.objects.tree.id = flower::object_id(msg);
    in.objects.objects[in.objects.tree.id] = msg;
    expect_error(in, {}, 0, "array 'w': stype 'torch.Tensor' is not supported");
  }
  // An object whose bytes are not those of its id.
  {
    auto in = stamen_train(5678, train_content());
    auto chunk = in.objects.tree.children[0].children[0].children[0].children[0].id;
    auto bad = in.objects.objects.at(chunk);
    bad.back() ^= 1;
    expect_error(in, {{chunk, bad}}, 0, "does not hash to its id");
  }
  // And the node still trains.
  auto ok = stamen_train(5678, train_content());
  auto reply = f.reply_to(f.link.send(5678, ok.objects, ok.meta));
  BOOST_REQUIRE(reply.has_content());
  BOOST_TEST(w_of(reply) == (std::vector<float>{3, 4, 5}), boost::test_tools::per_element());
  BOOST_TEST(node.running());
  f.link.with([&] { BOOST_TEST(f.link.refused.empty(), (f.link.refused.empty() ? "" : f.link.refused.front())); });
}

BOOST_AUTO_TEST_CASE(a_superlink_that_goes_away_is_retried_and_a_restarted_one_joined_again) {
  flower_fixture f;
  auto& node = f.node();
  BOOST_REQUIRE(f.link.wait([&] { return !f.link.activated_ids.empty(); }));
  f.link.stop();
  BOOST_REQUIRE_MESSAGE(node.wait_for("retrying in", 60) >= 0, node.log());
  // A new SuperLink on the same address, without the old one's state.
  fake_superlink fresh;
  fresh.next_node_id = 9000;
  fresh.start(f.port);
  BOOST_REQUIRE_MESSAGE(fresh.wait([&] { return !fresh.activated_ids.empty(); }), node.log());
  BOOST_TEST(node.log().find("joining again") != std::string::npos, node.log());
  auto in = stamen_train(9000, train_content());
  auto id = fresh.send(9000, in.objects, in.meta);
  BOOST_REQUIRE(fresh.wait([&] { return fresh.replies.count(id) && fresh.replies.at(id).complete(); }));
  fresh.with([&] {
    const auto& r = fresh.replies.at(id);
    BOOST_TEST(r.proto.metadata().src_node_id() == 9000u);
    BOOST_TEST(r.proto.has_content());
  });
  node.signal(SIGTERM);
  BOOST_TEST(node.wait(30) == 0);
}

BOOST_AUTO_TEST_CASE(a_node_killed_mid_round_is_gone_and_a_new_one_registers_with_a_new_key) {
  flower_fixture f;
  auto gate = f.dir / "gate";
  pb::Scalar s;
  s.set_string(gate.string());
  f.link.with([&] { f.link.override_config["gate-file"] = s; });
  auto& first = f.node();
  BOOST_REQUIRE(f.link.wait([&] { return !f.link.activated_ids.empty(); }));
  auto in = stamen_train(5678, train_content());
  auto id = f.link.send(5678, in.objects, in.meta);
  BOOST_REQUIRE_MESSAGE(first.wait_for("waiting at the gate", 60) >= 0, first.log());
  first.signal(SIGKILL);
  BOOST_TEST(first.wait(30) == 128 + SIGKILL);
  f.link.with([&] {
    BOOST_TEST(f.link.replies.count(id) == 0u);  // what a SuperLink reads as a failure once heartbeats stop
    BOOST_TEST(f.link.deactivated.empty());
  });
  std::ofstream{gate} << "open\n";
  auto& second = f.node();
  BOOST_REQUIRE_MESSAGE(f.link.wait([&] { return f.link.activated_ids.size() == 2; }), second.log());
  f.link.with([&] {
    BOOST_TEST(f.link.activated_ids.at(1) == 5679u);
    BOOST_TEST(f.link.registered_keys.at(1) != f.link.registered_keys.at(0));
  });
  auto retry = stamen_train(5679, train_content());
  auto reply = f.reply_to(f.link.send(5679, retry.objects, retry.meta));
  BOOST_TEST(reply.has_content());
  second.signal(SIGTERM);
  BOOST_TEST(second.wait(30) == 0);
}

BOOST_AUTO_TEST_CASE(tls_with_root_certificates_and_a_node_key_of_its_own) {
  flower_fixture f(false);
  make_test_pki(f.dir / "pki", {"superlink"});
  auto pki = (f.dir / "pki").string();
  f.link.start(f.port, pki + "/superlink.pem", pki + "/superlink.key");
  // The node's key, made as `flwr supernode register` expects one (P-384), in PEM.
  auto key = (f.dir / "node.key").string();
  BOOST_REQUIRE(std::system(("openssl ecparam -name secp384r1 -genkey -noout -out " + key + " 2>/dev/null").c_str()) == 0);
  auto pub = (f.dir / "node.pub").string();
  BOOST_REQUIRE(std::system(("openssl ec -in " + key + " -pubout -out " + pub + " 2>/dev/null").c_str()) == 0);
  f.security = {"--root-certificates", pki + "/ca.pem", "--auth-supernode-private-key", key};
  auto& node = f.node();
  BOOST_REQUIRE_MESSAGE(f.link.wait([&] { return !f.link.activated_ids.empty(); }), node.log());
  f.link.with([&] { BOOST_TEST(f.link.activated_keys.at(0) == slurp(pub)); });
  auto in = flowers_train(5678);
  auto reply = f.reply_to(f.link.send(5678, in.objects, in.meta));
  BOOST_TEST(reply.has_content());
  node.signal(SIGTERM);
  BOOST_TEST(node.wait(30) == 0);
  // A CA that did not sign the SuperLink's certificate: no connection, retried, never joined.
  flower_fixture g(false);
  g.link.start(g.port, pki + "/superlink.pem", pki + "/superlink.key");
  g.security = {"--root-certificates", pki + "/other-ca.pem", "--max-wait-time", "2"};
  auto& stranger = g.node();
  BOOST_TEST(stranger.wait(60) == 1, stranger.log());
  g.link.with([&] { BOOST_TEST(g.link.activated_ids.empty()); });
  BOOST_TEST(stranger.log().find("gave up") != std::string::npos, stranger.log());
}

BOOST_AUTO_TEST_CASE(bad_command_lines_are_refused_before_connecting) {
  flower_fixture f;
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv{stamen_bin, "supernode", "--protocol", "flower", "--superlink",
                                  "127.0.0.1:" + std::to_string(f.port), "--app", (source_dir / "tests/cli/gated").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    child_process p(argv, (f.dir / "bad.log").string());
    auto rc = p.wait(60);
    return std::make_pair(rc, p.log());
  };
  auto [rc1, log1] = run({});
  BOOST_TEST(rc1 == 2);
  BOOST_TEST(log1.find("exactly one of --insecure and --root-certificates") != std::string::npos, log1);
  auto [rc2, log2] = run({"--insecure", "--nodes", "3"});
  BOOST_TEST(rc2 == 2);
  BOOST_TEST(log2.find("one node per process") != std::string::npos, log2);
  auto [rc3, log3] = run({"--insecure", "--node-config", "partition-id"});
  BOOST_TEST(rc3 == 2);
  BOOST_TEST(log3.find("--node-config") != std::string::npos, log3);
  f.link.with([&] { BOOST_TEST(f.link.registered_keys.empty()); });
}

BOOST_AUTO_TEST_SUITE_END()
