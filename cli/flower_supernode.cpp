#include "cli/flower_supernode.hpp"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "cli/app_loader.hpp"
#include "cli/flower_node_key.hpp"
#include "cli/signals.hpp"
#include "config/app_config.hpp"
#include "fleet.grpc.pb.h"
#include "messages/flower/fleet_conversion.hpp"
#include "messages/flower/flower_objects.hpp"
#include "runtime/format.hpp"

namespace stamen {

namespace fs = std::filesystem;
namespace pb = flwr::proto;

namespace {

using flower::from_proto;
using flower::to_proto;

std::string seconds_text(double s) { return format_double("%.2f", s) + " s"; }

// -- calls with Flower's retry policy ------------------------------------------

// What a call came to: done, the run is no longer running (PERMISSION_DENIED,
// which Flower's node reads so), stopped while retrying, or failed.
// UNAUTHENTICATED: the SuperLink does not know this node's key (it restarted
// without its state), which Flower's node dies of and this one rejoins.
enum class call_result { ok, run_not_running, stopped, unknown_node, failed };

class fleet_client {
 public:
  fleet_client(std::shared_ptr<grpc::Channel> channel, const flower_node_key& key, const flower_supernode_options& opts,
               const logger& log, std::atomic<bool>& stop)
      : stub_(pb::Fleet::NewStub(channel)), key_(key), opts_(opts), log_(log), stop_(stop) {}

  // Calls `method` until it succeeds or fails for good: UNAVAILABLE or
  // CANCELLED (the SuperLink is down or restarting) is retried with exponential backoff and
  // full jitter, up to `max_backoff_s` between tries, as flower-supernode's
  // retry invoker does; any other status fails, with the reason in `why`.
  template <class Req, class Resp>
  call_result call(grpc::Status (pb::Fleet::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                   const char* name, const Req& req, Resp& resp, std::string* why = nullptr,
                   double deadline_s = 0) {
    auto started = std::chrono::steady_clock::now();
    double wait = 1;
    for (int tries = 1;; ++tries) {
      grpc::ClientContext ctx;
      key_.sign_call(ctx, deadline_s);
      auto status = ((*stub_).*method)(&ctx, req, &resp);
      if (status.ok()) {
        if (tries > 1)
          log_.info(std::string("Connection successful after ") + std::to_string(tries) + " tries (" + name + ")");
        return call_result::ok;
      }
      if (status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
        if (why) *why = status.error_message();
        return call_result::run_not_running;
      }
      // CANCELLED too: a call in flight when the SuperLink shuts down ends so.
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE && status.error_code() != grpc::StatusCode::CANCELLED) {
        if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
          if (why) *why = std::string(name) + ": " + status.error_message();
          return call_result::unknown_node;
        }
        if (why) *why = std::string(name) + ": " + status.error_message() + " (gRPC status " +
                        std::to_string(status.error_code()) + ")";
        return call_result::failed;
      }
      std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
      if (opts_.max_wait_s > 0 && elapsed.count() >= opts_.max_wait_s) {
        if (why) *why = std::string(name) + ": the SuperLink is unavailable; gave up after " +
                        seconds_text(elapsed.count());
        log_.warn("Giving up reconnection after " + seconds_text(elapsed.count()) + " and " +
                  std::to_string(tries) + " tries");
        return call_result::failed;
      }
      // Per thread: the heartbeat thread and the pull loop may both be retrying.
      thread_local std::mt19937_64 rng{std::random_device{}()};
      std::uniform_real_distribution<double> jitter(0, std::min(wait, opts_.max_backoff_s));
      double sleep = jitter(rng);
      log_.warn(std::string(name) + ": connection attempt failed (" + status.error_message() +
                "), retrying in " + seconds_text(sleep));
      if (!sleep_unless_stopped(sleep)) return call_result::stopped;
      wait = std::min(wait * 2, opts_.max_backoff_s);
    }
  }

  pb::Fleet::Stub& stub() { return *stub_; }

  // Sleeps up to `s` seconds; false when told to stop meanwhile. The stop
  // flag is set from a signal thread that cannot notify, so it is looked at
  // every 50 ms.
  bool sleep_unless_stopped(double s) {
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      auto now = std::chrono::steady_clock::now();
      if (now >= until) return true;
      wake_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(50)));
    }
    return false;
  }
  void wake() { wake_.notify_all(); }

 private:
  std::unique_ptr<pb::Fleet::Stub> stub_;
  const flower_node_key& key_;
  const flower_supernode_options& opts_;
  const logger& log_;
  std::atomic<bool>& stop_;
  std::mutex mutex_;
  std::condition_variable wake_;
};

// -- run config -----------------------------------------------------------------

std::optional<config_value> from_scalar(const pb::Scalar& s) {
  switch (s.scalar_case()) {
    case pb::Scalar::kDouble: return config_value{s.double_()};
    case pb::Scalar::kSint64: return config_value{static_cast<int64_t>(s.sint64())};
    case pb::Scalar::kUint64:
      if (s.uint64() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return config_value{static_cast<int64_t>(s.uint64())};
    case pb::Scalar::kBool: return config_value{s.bool_()};
    case pb::Scalar::kString: return config_value{s.string()};
    case pb::Scalar::kBytes: return config_value{bytes(s.bytes().begin(), s.bytes().end())};
    case pb::Scalar::SCALAR_NOT_SET: return std::nullopt;
  }
  return std::nullopt;
}

// The app's run config (stamen.toml's [app.config]) with the run's overrides
// from Flower's GetRun. A key Stamen's app does not declare is passed
// through (Flower's app may carry its own); a declared key keeps its type.
expected<config_record> fused_run_config(const app_config& app, const pb::Run& run, const logger& log) {
  auto out = app.run_config;
  std::vector<std::string> passed;
  for (const auto& [key, scalar] : run.override_config()) {
    auto v = from_scalar(scalar);
    if (!v) return failure{errc::config_error, "run config key '" + key + "' has no value Stamen can hold"};
    auto it = out.find(key);
    if (it == out.end()) {
      passed.push_back(key);
      out.insert_or_assign(key, *v);
      continue;
    }
    if (std::holds_alternative<double>(it->second) && std::holds_alternative<int64_t>(*v))
      *v = static_cast<double>(std::get<int64_t>(*v));
    if (it->second.index() != v->index())
      return failure{errc::config_error, "run config key '" + key + "' = " + to_string(*v) +
                                             " does not have the type of stamen.toml's " + to_string(it->second)};
    it->second = *v;
  }
  if (!passed.empty()) {
    std::string keys;
    for (auto& k : passed) keys += (keys.empty() ? "" : ", ") + k;
    log.info("run " + std::to_string(run.run_id()) + ": run config keys not in stamen.toml passed through: " + keys);
  }
  if (auto ok = check_run_config(out, app.domains); !ok) return ok.error();
  return out;
}

// What a node keeps per run: Flower's Context and the ClientApp built for it.
struct run_state {
  context ctx;
  std::shared_ptr<const client_app> app;
  std::string config_error;  ///< set: every instruction of the run is answered with it
};

class flower_node {
 public:
  flower_node(const flower_supernode_options& opts, const logger& log, std::atomic<bool>& stop,
              app_config app, loaded_app code, config_record node_config, flower_node_key key,
              std::shared_ptr<grpc::Channel> channel)
      : opts_(opts), log_(log), stop_(stop), app_(std::move(app)), code_(std::move(code)),
        node_config_(std::move(node_config)), key_(std::move(key)), client_(std::move(channel), key_, opts, log, stop) {}

  int run() {
    if (code_.components.on_compute_thread_start) code_.components.on_compute_thread_start();
    if (!join()) return stop_ ? 0 : 1;
    std::thread beat([this] { heartbeats(); });
    int rc = 0;
    while (!stop_) {
      if (rejoin_.exchange(false) && !join()) {
        rc = stop_ ? 0 : 1;
        break;
      }
      auto got = pull_once();
      if (got == pulled::failed) {
        rc = 1;
        break;
      }
      if (got == pulled::nothing && !client_.sleep_unless_stopped(opts_.poll_interval_s)) break;
    }
    stop_ = true;
    client_.wake();
    beat.join();
    leave();
    return rc;
  }

 private:
  enum class pulled { message, nothing, failed };

  // RegisterNode with the node's key, then ActivateNode: the SuperLink
  // answers with the node id and expects heartbeats from then on.
  bool join() {
    std::string why;
    pb::RegisterNodeFleetRequest reg;
    reg.set_public_key(key_.public_pem());
    pb::RegisterNodeFleetResponse reg_resp;
    auto r = client_.call(&pb::Fleet::Stub::RegisterNode, "RegisterNode", reg, reg_resp, &why);
    if (r == call_result::stopped) return false;
    self_registered_ = self_registered_ || r == call_result::ok;
    // A key registered before (a restarted node with --auth-supernode-private-key)
    // is refused here and activates all the same.
    if (r != call_result::ok) log_.info("RegisterNode: " + why + "; activating the registered key");
    return activate();
  }

  bool activate() {
    std::string why;
    pb::ActivateNodeRequest act;
    act.set_public_key(key_.public_pem());
    act.set_heartbeat_interval(opts_.heartbeat_interval_s);
    pb::ActivateNodeResponse resp;
    auto r = client_.call(&pb::Fleet::Stub::ActivateNode, "ActivateNode", act, resp, &why);
    if (r != call_result::ok) {
      if (r != call_result::stopped) log_.error("cannot join the Flower SuperLink at " + opts_.superlink + ": " + why);
      return false;
    }
    node_id_ = resp.node_id();
    log_.info("Stamen SuperNode joined the Flower SuperLink at " + opts_.superlink + " as node " +
              std::to_string(node_id_) + " (heartbeat every " + seconds_text(opts_.heartbeat_interval_s) + ")");
    return true;
  }

  // Heartbeats as Flower's HeartbeatSender sends them: one at once, then
  // every (interval - call timeout) x (0.8 +- 0.1), from a thread of their
  // own so that a long training misses none. A failed call is retried with
  // backoff (1 s doubling to 20 s, full jitter). A SuperLink that no longer
  // knows the node (it restarted without state) gets a new activation, where
  // Flower's node would stop sending.
  void heartbeats() {
    constexpr double call_timeout_s = 5;  // HEARTBEAT_CALL_TIMEOUT
    std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(-0.1, 0.1);
    double backoff = 1;
    double next = 0;
    while (client_.sleep_unless_stopped(next)) {
      uint64_t id = node_id_;
      pb::SendNodeHeartbeatRequest req;
      req.mutable_node()->set_node_id(id);
      req.set_heartbeat_interval(opts_.heartbeat_interval_s);
      pb::SendNodeHeartbeatResponse resp;
      grpc::ClientContext ctx;
      key_.sign_call(ctx, call_timeout_s);
      auto status = client_.stub().SendNodeHeartbeat(&ctx, req, &resp);
      if (!status.ok()) {
        log_.debug("heartbeat: " + status.error_message());
        next = std::uniform_real_distribution<double>(0, backoff)(rng);
        backoff = std::min(backoff * 2, opts_.max_backoff_s);
        continue;
      }
      backoff = 1;
      next = std::max(0.1, opts_.heartbeat_interval_s - call_timeout_s) * (0.8 + jitter(rng));
      if (!resp.success() && node_id_ == id) {  // not an answer about an id already replaced
        // The pull loop joins again (one thread only, so that two activations never race).
        log_.warn("heartbeat: the SuperLink does not recognize node " + std::to_string(node_id_) + "; joining again");
        rejoin_ = true;
      }
    }
  }

  void leave() {
    if (node_id_ == 0) return;
    // Once each, without retries, as Flower's node leaves.
    grpc::ClientContext a, b;
    key_.sign_call(a, 5);
    key_.sign_call(b, 5);
    pb::DeactivateNodeRequest d;
    d.set_node_id(node_id_);
    pb::DeactivateNodeResponse dr;
    auto s1 = client_.stub().DeactivateNode(&a, d, &dr);
    // Unregistered only by whoever registered it: a key registered with
    // `flwr supernode register` stays so.
    grpc::Status s2;
    if (self_registered_) {
      pb::UnregisterNodeFleetRequest u;
      u.set_node_id(node_id_);
      pb::UnregisterNodeFleetResponse ur;
      s2 = client_.stub().UnregisterNode(&b, u, &ur);
    }
    log_.info("Node " + std::to_string(node_id_) + " left the Flower SuperLink" +
              (s1.ok() && s2.ok() ? "" : " (" + (s1.ok() ? s2 : s1).error_message() + ")"));
  }

  pulled pull_once() {
    pb::PullMessagesRequest req;
    req.mutable_node()->set_node_id(node_id_);
    pb::PullMessagesResponse resp;
    std::string why;
    auto r = client_.call(&pb::Fleet::Stub::PullMessages, "PullMessages", req, resp, &why);
    if (r == call_result::stopped) return pulled::nothing;
    if (r == call_result::unknown_node) {
      log_.warn(why + ": the SuperLink no longer knows node " + std::to_string(node_id_) + "; joining again");
      return join() ? pulled::nothing : pulled::failed;
    }
    if (r != call_result::ok) {
      log_.error(why);
      return r == call_result::failed ? pulled::failed : pulled::nothing;
    }
    if (resp.messages_list_size() == 0) return pulled::nothing;
    if (resp.message_object_trees_size() == 0) {
      log_.error("PullMessages: a message came without its object tree; ignored");
      return pulled::message;
    }
    try {
      handle(resp.messages_list(0), resp.message_object_trees(0));
    } catch (const std::exception& e) {
      // A message that costs what the node has not got (memory) costs that message only.
      log_.error("a message could not be handled: " + std::string(e.what()));
    }
    return pulled::message;
  }

  // Flower's pull of one object: not found is final (the SuperLink never
  // registered it); not yet available is retried with backoff (1 s doubling
  // to 10 s, 500 tries at most).
  expected<std::string> pull_object(uint64_t run_id, const std::string& id) {
    double wait = 1;
    auto started = std::chrono::steady_clock::now();
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(-0.2, 0.2);
    for (int tries = 0; tries < 500 && !stop_; ++tries) {
      if (std::chrono::steady_clock::now() - started > std::chrono::seconds(7200)) break;  // PULL_MAX_TIME
      pb::PullObjectRequest req;
      req.mutable_node()->set_node_id(node_id_);
      req.set_run_id(run_id);
      req.set_object_id(id);
      pb::PullObjectResponse resp;
      std::string why;
      auto r = client_.call(&pb::Fleet::Stub::PullObject, "PullObject", req, resp, &why);
      if (r != call_result::ok) return failure{errc::runtime_error, why.empty() ? "stopped" : why};
      if (!resp.object_found()) return failure{errc::invalid_message, "object " + id + " is not registered at the SuperLink"};
      if (resp.object_available()) {
        if (flower::object_id(resp.object_content()) != id)
          return failure{errc::invalid_message, "object " + id + " does not hash to its id; refused"};
        return std::move(*resp.mutable_object_content());
      }
      if (!client_.sleep_unless_stopped(wait * (1 + jitter(rng)))) break;
      wait = std::min(wait * 2, 10.0);
    }
    return failure{errc::runtime_error, "object " + id + " never became available"};
  }

  run_state* state_of(uint64_t run_id) {
    auto it = runs_.find(run_id);
    if (it != runs_.end()) return &it->second;
    pb::GetRunRequest req;
    req.mutable_node()->set_node_id(node_id_);
    req.set_run_id(run_id);
    pb::GetRunResponse resp;
    std::string why;
    if (client_.call(&pb::Fleet::Stub::GetRun, "GetRun", req, resp, &why) != call_result::ok) {
      log_.error("GetRun for run " + std::to_string(run_id) + ": " + why);
      return nullptr;
    }
    run_state st;
    st.ctx.run_id = run_id;
    st.ctx.node_id = node_id_;
    st.ctx.node_config = node_config_;
    st.ctx.app_dir = app_.dir.string();
    log_.info("run " + std::to_string(run_id) + ": FAB " + resp.run().fab_id() + " " + resp.run().fab_version() +
              " hash " + resp.run().fab_hash() + " (not executed: Stamen's app '" + app_.name + "' answers)");
    auto rc = fused_run_config(app_, resp.run(), log_);
    if (!rc) {
      st.config_error = rc.error().what;
      log_.error("run " + std::to_string(run_id) + ": " + st.config_error);
    } else {
      st.ctx.run_config = std::move(*rc);
      try {
        st.app = code_.components.make_client(st.ctx);
      } catch (const std::exception& e) {
        st.config_error = std::string("the ClientApp could not be built: ") + e.what();
      }
      if (!st.app && st.config_error.empty()) st.config_error = "the app builds no ClientApp";
    }
    return &runs_.emplace(run_id, std::move(st)).first->second;
  }

  void handle(const pb::Message& proto, const pb::ObjectTree& tree_proto) {
    auto meta = from_proto(proto.metadata());
    auto tree = from_proto(tree_proto);
    auto run_id = meta.run_id;
    log_.info("[RUN " + std::to_string(run_id) + (meta.group_id.empty() ? "" : ", ROUND " + meta.group_id) +
              "] Received: " + meta.message_type + " message " + meta.message_id);
    auto* st = state_of(run_id);
    if (!st) return;
    st->ctx.node_id = node_id_;  // a node that joined again has a new id
    // All of the tree's objects, each checked against its id as it arrives.
    std::map<std::string, std::string> objects;
    std::optional<message_error> unreadable;
    for (const auto& id : flower::post_order(tree)) {
      auto got = pull_object(run_id, id);
      if (!got) {
        if (stop_) return;
        unreadable = message_error{error_code::unknown, "cannot read the instruction: " + got.error().what};
        break;
      }
      objects.emplace(id, std::move(*got));
    }
    pb::ConfirmMessageReceivedRequest confirm;
    confirm.mutable_node()->set_node_id(node_id_);
    confirm.set_run_id(run_id);
    confirm.set_message_object_id(meta.message_id);
    pb::ConfirmMessageReceivedResponse confirmed;
    std::string why;
    if (auto r = client_.call(&pb::Fleet::Stub::ConfirmMessageReceived, "ConfirmMessageReceived", confirm, confirmed, &why);
        r == call_result::run_not_running) {
      log_.info("Run " + std::to_string(run_id) + " is not running; message " + meta.message_id + " ignored");
      return;
    }
    message instruction(meta, record_dict{});
    if (!unreadable) {
      if (tree.id != meta.message_id) {
        unreadable = message_error{error_code::unknown, "the object tree's root " + tree.id +
                                                            " is not the message id " + meta.message_id};
      } else if (auto m = flower::inflate(tree.id, objects); !m) {
        unreadable = message_error{error_code::unknown, "cannot read the instruction: " + m.error().what};
      } else {
        instruction = std::move(*m);
        instruction.meta().message_id = meta.message_id;
      }
    }
    message reply;
    if (unreadable) {
      log_.error("[RUN " + std::to_string(run_id) + "] " + unreadable->reason);
      reply = make_error_reply(instruction, *unreadable);
    } else if (!st->config_error.empty()) {
      reply = make_error_reply(instruction, message_error{error_code::load_client_app, st->config_error});
    } else {
      reply = st->app->handle(instruction, st->ctx);  // never throws: errors are error replies
    }
    push(instruction, std::move(reply));
  }

  void push(const message& instruction, message reply) {
    // Flower's reply metadata: created now, its TTL what is left of the
    // instruction's (both read on the wall clock, as Flower's SuperLink checks).
    auto& m = reply.meta();
    m.run_id = instruction.meta().run_id;
    m.src_node_id = instruction.meta().dst_node_id;  // the id it was sent to, even if the node rejoined since
    m.dst_node_id = server_node_id;
    m.reply_to_message_id = instruction.meta().message_id;
    m.group_id = instruction.meta().group_id;
    m.message_type = instruction.meta().message_type;
    m.created_at = now_seconds();
    m.ttl = instruction.meta().created_at + instruction.meta().ttl - m.created_at;
    m.message_id.clear();
    auto deflated = flower::deflate(reply);
    if (!deflated) {
      // The reply holds what Flower cannot carry (e.g. a bfloat16 array): say so instead.
      log_.error("[RUN " + std::to_string(m.run_id) + "] the reply cannot be sent: " + deflated.error().what);
      reply = message(reply.meta(), message_error{error_code::client_app_raised, "the reply cannot be sent to Flower: " +
                                                                                    deflated.error().what});
      deflated = flower::deflate(reply);
      if (!deflated) return;
    }
    reply.meta().message_id = deflated->tree.id;
    pb::PushMessagesRequest req;
    req.mutable_node()->set_node_id(node_id_);
    auto* msg = req.add_messages_list();
    to_proto(reply.meta(), msg->mutable_metadata());
    if (reply.has_error()) {
      msg->mutable_error()->set_code(reply.error().code);
      msg->mutable_error()->set_reason(reply.error().reason);
    } else {
      msg->mutable_content();  // the content travels as objects
    }
    to_proto(deflated->tree, req.add_message_object_trees());
    pb::PushMessagesResponse resp;
    std::string why;
    auto r = client_.call(&pb::Fleet::Stub::PushMessages, "PushMessages", req, resp, &why);
    if (r == call_result::run_not_running) {
      log_.info("Run " + std::to_string(m.run_id) + " is not running; reply dropped");
      return;
    }
    if (r != call_result::ok) {
      log_.error("[RUN " + std::to_string(m.run_id) + "] " + why);
      return;
    }
    std::set<std::string> wanted(resp.objects_to_push().begin(), resp.objects_to_push().end());
    size_t bytes = 0;
    for (const auto& id : flower::post_order(deflated->tree)) {
      if (!wanted.count(id)) continue;
      pb::PushObjectRequest po;
      po.mutable_node()->set_node_id(node_id_);
      po.set_run_id(m.run_id);
      po.set_object_id(id);
      po.set_object_content(deflated->objects.at(id));
      bytes += po.object_content().size();
      pb::PushObjectResponse pr;
      if (client_.call(&pb::Fleet::Stub::PushObject, "PushObject", po, pr, &why) != call_result::ok || !pr.stored()) {
        log_.error("[RUN " + std::to_string(m.run_id) + "] PushObject " + id + " was not stored" +
                   (why.empty() ? "" : ": " + why));
        return;
      }
    }
    log_.info("[RUN " + std::to_string(m.run_id) + "] Sent " + (reply.has_error() ? "error reply" : "reply") + " (" +
              std::to_string(wanted.size()) + " objects, " + std::to_string(bytes) + " bytes)");
  }

  const flower_supernode_options& opts_;
  const logger& log_;
  std::atomic<bool>& stop_;
  app_config app_;
  loaded_app code_;
  config_record node_config_;
  flower_node_key key_;
  fleet_client client_;
  std::atomic<uint64_t> node_id_{0};
  std::atomic<bool> rejoin_{false};  ///< set by the heartbeat thread, acted on by the pull loop
  bool self_registered_ = false;     ///< RegisterNode succeeded: UnregisterNode when leaving
  std::map<uint64_t, run_state> runs_;
};

expected<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return failure{errc::io_error, "cannot read " + path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int run_flower_supernode(const flower_supernode_options& opts, const logger& log, std::atomic<bool>* stop) {
  std::atomic<bool> own_stop{false};
  if (!stop) {
    stop = &own_stop;
    // Blocked before gRPC starts its threads, so that the signal comes here.
    on_stop_signal(block_stop_signals(), [stop](int) { *stop = true; });
  }
  if (opts.insecure == !opts.root_certificates.empty()) {
    log.error("supernode: --protocol flower needs exactly one of --insecure and --root-certificates CA.pem");
    return 2;
  }
  if (opts.insecure && !opts.private_key.empty()) {
    log.error("supernode: --auth-supernode-private-key needs TLS (--root-certificates), as Flower's SuperNode");
    return 2;
  }
  auto node_config = parse_key_values(opts.node_config);
  if (!node_config) {
    log.error("supernode: --node-config: " + node_config.error().what);
    return 2;
  }
  auto app = load_app_config(opts.app_dir);
  if (!app) {
    log.error("supernode: " + app.error().what);
    return 2;
  }
  auto search = default_app_search_path();
  search.insert(search.begin(), {fs::path{opts.app_dir} / "build", fs::path{opts.app_dir}});
  auto code = load_app(app->library, search);
  if (!code) {
    log.error("supernode: " + code.error().what);
    return 2;
  }
  if (!code->components.make_client) {
    log.error("supernode: app '" + app->name + "' has no ClientApp");
    return 2;
  }
  auto key = flower_node_key::make(opts.private_key);
  if (!key) {
    log.error("supernode: " + key.error().what);
    return 2;
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (opts.insecure) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    auto pem = read_file(opts.root_certificates);
    if (!pem) {
      log.error("supernode: --root-certificates: " + pem.error().what);
      return 2;
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *pem;
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  // Flower's GRPC_MAX_MESSAGE_LENGTH: 2 GiB - 1 both ways (objects are at most 5 MiB, but a tree is not).
  args.SetMaxReceiveMessageSize(std::numeric_limits<int>::max());
  args.SetMaxSendMessageSize(std::numeric_limits<int>::max());
  auto channel = grpc::CreateCustomChannel(opts.superlink, creds, args);
  log.info("Starting Stamen SuperNode (Flower Fleet API) for Flower SuperLink " + opts.superlink + " with app '" +
           app->name + "'" + (opts.node_config.empty() ? "" : " and node config '" + opts.node_config + "'"));
  flower_node node(opts, log, *stop, std::move(*app), std::move(*code), std::move(*node_config), std::move(*key),
                   std::move(channel));
  return node.run();
}

}  // namespace stamen
