#include "actors/superlink.hpp"

#include <caf/io/broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <nlohmann/json.hpp>

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include "actors/dashboard_page.hpp"
#include "actors/grid_actor.hpp"
#include "actors/handshake.hpp"
#include "actors/in_process_grid.hpp"
#include "actors/link_liveness.hpp"
#include "actors/node_identity.hpp"
#include "actors/run_store.hpp"
#include "actors/superlink_metrics.hpp"
#include "actors/transport.hpp"
#include "actors/wire_frame.hpp"
#include "config/app_bundle.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/flower_log.hpp"
#include "runtime/progress_line.hpp"
#include "runtime/result_json.hpp"

namespace stamen {

namespace {

using caf::io::connection_handle;

namespace fs = std::filesystem;

// A submitted run whose bundle the superlink asked its submitter for.
struct pending_submit {
  std::string app;
  std::string library;
  std::string hash;
  buffer run_config;  ///< encoded, as sent to nodes
  config_record decoded;
  uint64_t min_nodes = 0;
};

struct peer {
  enum class role { pending, node, client };
  role kind = role::pending;
  std::string nonce;
  std::string where;  ///< "host:port", for log lines
  uint64_t node_id = 0;  ///< its first node; a link carries node_id .. node_id + nodes - 1
  uint32_t nodes = 0;
  supernode_actor proxy;  ///< stands for all of them in the grid
  wire::frame_assembler frames;
  link_writer writer;
  link_liveness alive;
  std::optional<pending_submit> awaiting_bundle;  ///< a submitter's run, until its bundle is here
  double joined_at = 0;  ///< Unix seconds, once a node
};

// A run that has not finished: pending in the queue, or starting or
// running on a thread of its own.
struct live_run {
  run_record rec;
  config_record decoded;
  /// Connections that get its log lines as they come and its result at the
  /// end: its submitter (unless detached) and `stamen log --follow`s.
  std::vector<connection_handle> followers;
  std::shared_ptr<run_stop> stop = std::make_shared<run_stop>();
  std::thread runner;
  /// Its live status line (progress_line's), sent to its followers on the
  /// next heartbeat when it changed: at most a few frames a second however
  /// fast replies come.
  std::string progress;
  bool progress_sent = true;
  bool started = false;    ///< counted among the runs at once
  bool announced = false;  ///< its ServerApp loaded, nodes were told (a run frame)
};

// What a node did for this superlink's runs, for the dashboard's nodes
// table; kept while the superlink runs, across the node's reconnections.
struct node_activity {
  uint64_t replies = 0;
  uint64_t failures = 0;  ///< replies the strategy could not use, and replies that never came
  std::vector<uint64_t> runs;  ///< the runs it answered in (few: a set would cost more)
};

struct superlink_state {
  static inline const char* name = "stamen.superlink";
  superlink_options opts;
  grid_actor grid;
  std::unordered_map<connection_handle, peer> peers;
  std::unordered_map<uint64_t, connection_handle> by_node;
  std::mt19937_64 rng{std::random_device{}()};
  std::unique_ptr<bundle_store> bundles;
  std::unique_ptr<run_store> store;
  std::map<uint64_t, live_run> runs;  ///< every run not finished
  std::deque<uint64_t> queue;         ///< pending runs, first come first served
  size_t started = 0;                 ///< runs starting or running
  superlink_metrics metrics;
  std::unordered_map<uint64_t, node_activity> activity;
  /// The last warnings and errors of the process, for the dashboard.
  struct recent_lines {
    std::mutex mtx;
    std::deque<std::string> lines;
  };
  std::shared_ptr<recent_lines> warnings = std::make_shared<recent_lines>();

  ~superlink_state() {
    for (auto& [id, r] : runs)
      if (r.runner.joinable()) r.runner.detach();  // the process is going down
  }
};

using broker_ptr = caf::io::stateful_broker<superlink_state>*;

// "node 17", or "nodes 17..1016 (1000)" for a link that carries several.
std::string node_names(const peer& pr) {
  if (pr.nodes <= 1) return "node " + std::to_string(pr.node_id);
  return "nodes " + std::to_string(pr.node_id) + ".." + std::to_string(pr.node_id + pr.nodes - 1) + " (" +
         std::to_string(pr.nodes) + ")";
}

void send_frame(broker_ptr self, connection_handle hdl, wire::frame_type t,
                const std::vector<std::byte>& payload) {
  auto p = self->state.peers.find(hdl);
  if (p == self->state.peers.end()) return;
  p->second.writer.out.push(t, payload);
  pump(self, hdl, p->second.writer);
  p->second.alive.sent();
  self->state.metrics.bytes_out(wire::header_size + payload.size());
}

// Tells a peer why it is refused, then closes its connection.
void refuse(broker_ptr self, connection_handle hdl, const std::string& why, bool retry) {
  wire::writer w;
  w.str(why);
  w.u8(retry ? 1 : 0);
  send_frame(self, hdl, wire::frame_type::refuse, w.bytes());
  // CAF closes gracefully: what is in its buffer (the refusal) goes first.
  auto& st = self->state;
  if (auto p = st.peers.find(hdl); p != st.peers.end())
    st.opts.log.warn("superlink: refused " + p->second.where + ": " + why);
  self->state.peers.erase(hdl);
  self->close(hdl);
}

// Stops sending a run's log and result to `hdl`.
void unfollow(broker_ptr self, connection_handle hdl) {
  for (auto& [id, r] : self->state.runs)
    r.followers.erase(std::remove(r.followers.begin(), r.followers.end(), hdl), r.followers.end());
}

// Forgets a connection; a node's proxy dies with it, so the grid answers for
// every instruction the node still owed.
void drop(broker_ptr self, connection_handle hdl, const std::string& why) {
  auto& st = self->state;
  auto p = st.peers.find(hdl);
  if (p == st.peers.end()) return;
  auto& pr = p->second;
  if (pr.kind == peer::role::node) {
    st.opts.log.warn("superlink: " + node_names(pr) + " at " + pr.where + " disconnected: " + why);
    for (uint32_t i = 0; i < pr.nodes; ++i) st.by_node.erase(pr.node_id + i);
    caf::anon_send_exit(pr.proxy, caf::exit_reason::remote_link_unreachable);
  } else if (pr.kind == peer::role::client && pr.awaiting_bundle) {
    st.opts.log.warn("superlink: submitter at " + pr.where + " left before sending its app bundle: " + why);
  } else if (pr.kind == peer::role::client) {
    // Its runs go on; their log is no longer sent to it.
    st.opts.log.debug("superlink: client at " + pr.where + " left: " + why);
  } else if (why == "connection closed") {
    // With TLS this is how a failed handshake shows (no certificate, one
    // from another CA, or plaintext); without, a peer that just left.
    if (st.opts.link.tls)
      st.opts.log.warn("superlink: peer " + pr.where +
                       " closed before its hello (failed TLS handshake: no certificate, another "
                       "CA's, or plaintext?)");
    else
      st.opts.log.debug("superlink: peer " + pr.where + " left before its hello");
  } else {
    st.opts.log.warn("superlink: dropped peer " + pr.where + " before its handshake: " + why);
  }
  unfollow(self, hdl);
  st.peers.erase(p);
  self->close(hdl);
}

void send_run(broker_ptr self, connection_handle hdl, const live_run& r) {
  wire::writer w;
  w.u64(r.rec.id);
  w.str(r.rec.library);
  w.blob(r.rec.run_config);
  w.str(r.rec.bundle);
  send_frame(self, hdl, wire::frame_type::run, w.bytes());
}

// A node asks for a bundle it lacks: it gets the stored bytes as they are
// (it checks them against the hash itself), or none when this superlink
// holds no such bundle.
void send_bundle(broker_ptr self, connection_handle hdl, const peer& pr, const std::string& hash) {
  auto& st = self->state;
  auto bytes = st.bundles->has(hash) ? st.bundles->read(hash) : expected<buffer>{fail(errc::io_error, "")};
  if (!bytes)
    st.opts.log.warn("superlink: " + node_names(pr) + " asked for bundle " +
                     short_hash(hash) + "..., which is not stored here");
  else
    st.opts.log.info("superlink: sending bundle " + short_hash(hash) + "... (" +
                     std::to_string(bytes->size()) + " bytes) to " + node_names(pr));
  wire::writer w;
  w.str(hash);
  w.blob(bytes ? *bytes : buffer{});
  send_frame(self, hdl, wire::frame_type::bundle, w.bytes());
}

// The proxy that stands for a link's remote nodes in the grid (one actor
// for all of them: the grid routes by the envelope's node id, and the
// link's death is one down message): instructions go to the broker, which
// writes them to the link's connection.
supernode_actor::behavior_type node_proxy(supernode_actor::pointer self, caf::actor broker) {
  return {
    [=](instruct_atom, envelope& e) {
      auto node_id = e.node_id;
      caf::anon_send(broker, instruct_atom::value, node_id, std::move(e));
    },
    [](done_atom, envelope&, record_dict&) {},
  };
}

// Logs a failure to keep state: the superlink goes on (a run it cannot
// record still runs), and the log says what was not kept.
void check_kept(broker_ptr self, const expected<void>& ok) {
  if (!ok) self->state.opts.log.error("superlink: " + ok.error().what);
}

void on_hello(broker_ptr self, connection_handle hdl, peer& pr, const buffer& payload) {
  auto& st = self->state;
  auto h = wire::read_hello(payload);
  if (!h) return refuse(self, hdl, "malformed hello: " + h.error().what, false);
  uint64_t node_id = h->node_id;
  std::string key;
  if (st.opts.link.tls || !st.opts.link.allowed_nodes.empty()) {
    // The id is bound to the key that signed this connection's nonce: a node
    // cannot claim another's id, and a restarted node gets its own back.
    auto who = authenticate_node(h->certificate, h->signature, pr.nonce, st.opts.link);
    if (!who) return refuse(self, hdl, who.error().what, false);
    node_id = who->node_id;
    key = who->fingerprint;
    st.opts.log.info("superlink: " + pr.where + " authenticated as key " +
                     who->fingerprint.substr(0, 16) + "...");
  }
  const uint64_t n = h->nodes;
  // A block of n ids, none of them 0, the server's, or held by a live link.
  auto usable = [&](uint64_t first) {
    if (first <= server_node_id || first > (uint64_t{1} << 63) - n) return false;
    for (uint64_t i = 0; i < n; ++i)
      if (st.by_node.count(first + i) > 0) return false;
    return true;
  };
  if (node_id != 0 && !usable(node_id)) {
    if (node_id > server_node_id && node_id <= (uint64_t{1} << 63) - n)
      return refuse(self, hdl, "node id " + std::to_string(node_id) + (n > 1 ? " (or one of the next " + std::to_string(n - 1) + ")" : std::string{}) +
                                   " is held by a live connection (retry once it times out)",
                    true);
    node_id = 0;  // an id this superlink would not grant: a fresh one
  }
  if (node_id == 0) {
    do node_id = st.rng() >> 1;
    while (!usable(node_id));
  }
  pr.kind = peer::role::node;
  pr.node_id = node_id;
  pr.nodes = static_cast<uint32_t>(n);
  pr.frames.set_max_length(st.opts.link.max_frame);
  pr.proxy = self->spawn(node_proxy, caf::actor{self});
  std::vector<uint64_t> ids;
  ids.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    st.by_node.emplace(node_id + i, hdl);
    ids.push_back(node_id + i);
  }
  pr.joined_at = unix_now();
  st.metrics.node_joined(n);
  wire::writer w;
  w.u64(node_id);
  send_frame(self, hdl, wire::frame_type::accept, w.bytes());
  for (auto& [id, r] : st.runs)
    if (r.announced) send_run(self, hdl, r);
  st.opts.log.info("superlink: " + node_names(pr) + " joined from " + pr.where +
                   (h->node_config.empty() ? "" : " (" + h->node_config + ")"));
  check_kept(self, st.store->node_seen(ids, pr.where, key));
  // One request for all of them: a request per node costs a link of
  // 25,000 nodes half a second of this broker's time, without pings.
  self->request(st.grid, caf::infinite, register_atom::value, std::move(ids), pr.proxy)
      .then([self, hdl](bool ok) {
        if (!ok) drop(self, hdl, "the grid refused its id");
      });
}

// What a superlink keeps of a run while it goes, sent to the broker: each
// round's aggregated metrics (recorded for `stamen ls` and the API) and
// what /metrics counts (rounds and their time, replies, failures,
// checkpoints).
class run_progress : public run_observer {
 public:
  run_progress(caf::actor broker, uint64_t run_id) : broker_(std::move(broker)), run_id_(run_id) {}
  void on_aggregated(int round, run_phase phase, const metric_record& metrics) override {
    caf::anon_send(broker_, round_atom::value, run_id_, round,
                   std::string{phase == run_phase::train ? "train" : "evaluate"}, to_json(metrics));
  }
  void on_version(const version_report& v, int) override {
    caf::anon_send(broker_, round_atom::value, run_id_, v.version, std::string{"version"},
                   std::string{"{}"});
    tally("round", v.seconds - last_version_s_);
    last_version_s_ = v.seconds;
  }
  void on_round_start(int, int) override { round_start_ = std::chrono::steady_clock::now(); }
  void on_phase_end(run_phase phase, const phase_report&) override {
    if (phase != run_phase::evaluate) return;
    tally("round", std::chrono::duration<double>(std::chrono::steady_clock::now() - round_start_).count());
  }
  void on_reply_accepted(int, run_phase phase, uint64_t node_id) override {
    caf::anon_send(broker_, tally_atom::value, run_id_, node_id, name(phase), std::string{});
  }
  void on_reply_failed(int, run_phase phase, uint64_t node_id, const std::string& reason) override {
    caf::anon_send(broker_, tally_atom::value, run_id_, node_id, name(phase),
                   reason.empty() ? std::string{"unknown"} : reason);
  }
  void on_checkpoint(int, double seconds, uint64_t, const std::string& error) override {
    if (error.empty()) tally("checkpoint", seconds);
  }

 private:
  static std::string name(run_phase p) { return p == run_phase::train ? "train" : "evaluate"; }
  void tally(const char* kind, double value) {
    caf::anon_send(broker_, tally_atom::value, std::string{kind}, value);
  }
  caf::actor broker_;
  uint64_t run_id_;
  std::chrono::steady_clock::time_point round_start_ = std::chrono::steady_clock::now();
  double last_version_s_ = 0;
};

void tally(broker_ptr self, const std::string& kind, double value) {
  auto& m = self->state.metrics;
  if (kind == "round") m.round_completed(value);
  else if (kind == "checkpoint") m.checkpoint(value);
}

// A reply of `node_id` in a run was used, or failed for `reason`.
void tally_reply(broker_ptr self, uint64_t run_id, uint64_t node_id, const std::string& phase,
                 const std::string& reason) {
  auto& st = self->state;
  st.metrics.reply(phase, reason);
  // The server's own id stands for "no node" (a failure the strategy
  // cannot pin on one).
  if (node_id <= server_node_id) return;
  auto& a = st.activity[node_id];
  ++(reason.empty() ? a.replies : a.failures);
  if (std::find(a.runs.begin(), a.runs.end(), run_id) == a.runs.end()) a.runs.push_back(run_id);
}

// Runs a ServerApp on a thread of its own (it blocks on its grid calls, so
// never on one of the scheduler's) and tells the broker how it ended.
// Loading the app (a dlopen that pulls in LibTorch takes a second or two)
// happens there too: the broker must keep its heartbeats. Every line logged
// on this thread is the run's log.
void run_server_thread(caf::actor_system& sys, caf::actor broker, grid_actor grid,
                       app_resolver resolve, std::string library, context ctx,
                       std::shared_ptr<run_stop> stop, codec_options codec, logger log, uint64_t min_nodes) {
  auto run_id = ctx.run_id;
  logger::set_thread_tee(
      [broker, run_id](const std::string& line) { caf::anon_send(broker, log_atom::value, run_id, line); });
  // This thread gets a working directory of its own, the run's: whatever
  // the ServerApp writes to a relative path lands there (and `stamen pull`
  // copies it), whatever the other runs do at the same time.
  if (::unshare(CLONE_FS) != 0 || ::chdir(ctx.run_dir.c_str()) != 0)
    log.warn("superlink: run " + std::to_string(run_id) + ": relative paths resolve in the superlink's "
             "directory, not the run's (" + std::strerror(errno) + ")");
  auto app = resolve(library, ctx.app_dir);
  if (!app) {
    log.error("superlink: run " + std::to_string(run_id) + " cannot load its app: " + app.error().what);
    logger::set_thread_tee({});
    caf::anon_send(broker, finished_atom::value, run_id, false, app.error().what);
    return;
  }
  caf::anon_send(broker, status_atom::value, run_id, std::string{run_status::running});
  std::string out;
  bool ok = true;
  {
    caf::scoped_actor scoped{sys};
    in_process_grid g{scoped.ptr(), grid, run_id, codec, log};
    g.send_content_in_parts(true);  // every node is behind a connection
    run_events events;
    events.add(std::make_shared<flower_log>(log));
    events.add(std::make_shared<run_progress>(broker, run_id));
    // The live line its submitter draws under the log on a terminal; the
    // broker sends the latest one on each heartbeat.
    events.add(std::make_shared<progress_line>(
        [broker, run_id](const std::string& text) { caf::anon_send(broker, progress_atom::value, run_id, text); }));
    stop->set_interrupt([&g] { g.interrupt(); });
    // The federation's node count: a simulation spread over supernode
    // processes starts with all its nodes, as it would in one process.
    if (min_nodes > 0) {
      size_t have = 0;
      auto started = std::chrono::steady_clock::now();
      // Short waits, so that `stamen stop` ends the wait within a second.
      // A grid gone (the superlink going down) ends it too.
      try {
        for (int i = 0; !stop->requested() && (have = g.wait_for_nodes(min_nodes, 1.0)) < min_nodes; ++i)
          if (i % 10 == 0)
            log.info("superlink: run " + std::to_string(run_id) + " waits for " + std::to_string(min_nodes) +
                     " nodes (" + std::to_string(have) + " connected)");
      } catch (const std::exception& e) {
        log.warn("superlink: run " + std::to_string(run_id) + " stopped waiting for nodes: " + e.what());
      }
      if (have >= min_nodes)
        log.info("superlink: run " + std::to_string(run_id) + ": " + std::to_string(have) + " nodes connected after " +
                 format_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()));
    }
    // Each completed round is checkpointed in the run's directory; a
    // restarted superlink resumes the run from there.
    checkpoint_store checkpoints{ctx.run_dir, "run " + std::to_string(run_id)};
    auto result = run_server_app((*app)->server, g, ctx, &events, stop.get(), &checkpoints);
    stop->set_interrupt({});
    ok = static_cast<bool>(result);
    out = !result ? result.error().what : *result ? to_json(**result) : "{}";
  }
  logger::set_thread_tee({});
  caf::anon_send(broker, finished_atom::value, run_id, ok, std::move(out));
}

// Sends one line of a run's log to whoever follows it, and keeps it.
void run_log(broker_ptr self, uint64_t run_id, const std::string& line) {
  auto& st = self->state;
  check_kept(self, st.store->append_log(run_id, line));
  auto r = st.runs.find(run_id);
  if (r == st.runs.end()) return;
  wire::writer w;
  w.str(line);
  for (auto hdl : r->second.followers) send_frame(self, hdl, wire::frame_type::log, w.bytes());
}

// Starts pending runs while fewer than --max-concurrent-runs are started.
void start_pending(broker_ptr self) {
  auto& st = self->state;
  while (!st.queue.empty() && st.started < std::max<size_t>(1, st.opts.max_concurrent_runs)) {
    auto id = st.queue.front();
    st.queue.pop_front();
    auto it = st.runs.find(id);
    if (it == st.runs.end()) continue;
    auto& r = it->second;
    ++st.started;
    r.started = true;
    r.rec.status = run_status::starting;
    check_kept(self, st.store->set_status(id, run_status::starting));
    auto run_dir = st.opts.state_dir / "runs" / std::to_string(id);
    std::error_code ec;
    fs::create_directories(run_dir, ec);
    std::string line = "superlink: starting run " + std::to_string(id) + " of '" + r.rec.app + "' (bundle " +
                       short_hash(r.rec.bundle) + "...) with " + std::to_string(st.by_node.size()) +
                       " node(s) connected";
    st.opts.log.info(line);
    run_log(self, id, "INFO :      " + line);
    context ctx;
    ctx.run_id = id;
    ctx.node_id = server_node_id;
    ctx.run_config = r.decoded;
    ctx.app_dir = st.bundles->dir(r.rec.bundle).string();
    ctx.run_dir = run_dir.string();
    r.runner = std::thread(run_server_thread, std::ref(self->system()), caf::actor{self}, st.grid,
                           st.opts.resolve, r.rec.library, std::move(ctx), r.stop, st.opts.codec, st.opts.log,
                           r.rec.min_nodes);
  }
}

// Queues an accepted run whose bundle is stored; tells its submitter its id.
void queue_run(broker_ptr self, connection_handle hdl, pending_submit run) {
  auto& st = self->state;
  uint64_t id;
  do id = (st.rng() >> 1) | 1;
  while (st.runs.count(id) > 0);
  live_run r;
  r.rec.id = id;
  r.rec.app = run.app;
  r.rec.library = run.library;
  r.rec.bundle = run.hash;
  r.rec.run_config = run.run_config;
  r.rec.run_config_text = to_string(run.decoded);
  r.rec.submitted_at = unix_now();
  r.rec.min_nodes = run.min_nodes;
  r.decoded = std::move(run.decoded);
  r.followers.push_back(hdl);
  if (auto ok = st.store->add(r.rec); !ok) return refuse(self, hdl, "cannot keep the run: " + ok.error().what, true);
  auto& p = st.peers.at(hdl);
  st.opts.log.info("superlink: run " + std::to_string(id) + " of '" + run.app + "' submitted by " + p.where +
                   (st.started >= std::max<size_t>(1, st.opts.max_concurrent_runs)
                        ? " is pending (" + std::to_string(st.started) + " running)"
                        : ""));
  wire::writer w;
  w.u64(id);
  send_frame(self, hdl, wire::frame_type::accepted, w.bytes());
  st.runs.emplace(id, std::move(r));
  st.queue.push_back(id);
  start_pending(self);
}

// Shipping code is remote code execution, and a run's control is its own:
// a client is taken only with a key on the allow-list (proven as a node
// proves its own), unless the superlink was told to take anyone.
expected<void> authorize_client(broker_ptr self, const peer& pr, const std::string& certificate,
                                const std::string& signature) {
  auto& st = self->state;
  if (st.opts.insecure_accept_bundles) return {};
  if (!st.opts.link.tls)
    return fail(errc::invalid_argument,
                "this superlink accepts app bundles only from an authenticated submitter: start it with "
                "TLS and --allow-submitter, or (on a trusted network) with --insecure-accept-bundles");
  if (st.opts.allowed_submitters.empty())
    return fail(errc::invalid_argument,
                "no submitter may ship app bundles to this superlink (start it with --allow-submitter)");
  auto who = authenticate_peer(certificate, signature, pr.nonce, st.opts.link,
                               st.opts.allowed_submitters, "submitter");
  if (!who) return who.error();
  st.opts.log.info("superlink: submitter " + pr.where + " authenticated as key " +
                   who->fingerprint.substr(0, 16) + "...");
  return {};
}

void on_submit(broker_ptr self, connection_handle hdl, peer& pr, const buffer& payload) {
  auto& st = self->state;
  wire::reader r{payload};
  auto app = r.str("app", 4096);
  auto library = app ? r.str("library", 4096) : expected<std::string>{app.error()};
  auto rc = library ? r.blob("run config") : expected<buffer>{library.error()};
  auto hash = rc ? r.str("bundle hash", 64) : expected<std::string>{rc.error()};
  auto cert = hash ? r.str("certificate", 32 << 10) : expected<std::string>{hash.error()};
  auto sig = cert ? r.str("signature", 4096) : expected<std::string>{cert.error()};
  auto min_nodes = sig ? r.u64("min nodes") : expected<uint64_t>{sig.error()};
  if (!min_nodes) return refuse(self, hdl, "malformed submit: " + min_nodes.error().what, false);
  if (auto ok = r.finish("submit"); !ok) return refuse(self, hdl, "malformed submit: " + ok.error().what, false);
  if (!is_bundle_hash(*hash))
    return refuse(self, hdl, "submit names no app bundle (a SHA-256 hash); this superlink runs shipped apps only",
                  false);
  if (auto ok = authorize_client(self, pr, *cert, *sig); !ok) return refuse(self, hdl, ok.error().what, false);
  auto decoded = decode(*rc, st.opts.codec);
  const config_record* run_config = decoded && decoded->has_content()
                                        ? decoded->content().configs("run_config")
                                        : nullptr;
  if (run_config == nullptr)
    return refuse(self, hdl, "submit carries no readable run config", false);
  if (!st.opts.resolve) return refuse(self, hdl, "this superlink hosts no apps", false);
  pr.kind = peer::role::client;
  pr.frames.set_max_length(st.opts.link.max_handshake_frame);
  pending_submit run{*app, *library, *hash,
                     rc->empty() ? buffer{} : buffer::copy_of(rc->data(), rc->size()), *run_config, *min_nodes};
  if (st.bundles->has(*hash)) {
    st.opts.log.info("superlink: bundle " + short_hash(*hash) + "... is already stored");
    return queue_run(self, hdl, std::move(run));
  }
  // Only now, from a submitter allowed to ship one, is a frame of a
  // bundle's size read.
  pr.awaiting_bundle = std::move(run);
  pr.frames.set_max_length(st.opts.link.max_frame);
  wire::writer w;
  w.str(*hash);
  send_frame(self, hdl, wire::frame_type::fetch, w.bytes());
}

// The submitter's bundle arrived: checked, stored, and its run queued.
void on_submitted_bundle(broker_ptr self, connection_handle hdl, peer& pr, const buffer& payload) {
  auto& st = self->state;
  wire::reader r{payload};
  auto hash = r.str("bundle hash", 64);
  auto bytes = hash ? r.blob("bundle") : expected<buffer>{hash.error()};
  if (bytes) {
    if (auto ok = r.finish("bundle"); !ok) bytes = ok.error();
  }
  auto run = std::move(*pr.awaiting_bundle);
  pr.awaiting_bundle.reset();
  pr.frames.set_max_length(st.opts.link.max_handshake_frame);
  if (!bytes) return refuse(self, hdl, "malformed bundle frame: " + bytes.error().what, false);
  if (*hash != run.hash)
    return refuse(self, hdl, "sent bundle " + short_hash(*hash) + "... where " + short_hash(run.hash) +
                                 "... was asked for", false);
  auto start = std::chrono::steady_clock::now();
  auto dir = st.bundles->put(run.hash, *bytes);
  if (!dir) return refuse(self, hdl, dir.error().what, false);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  st.opts.log.info("superlink: stored bundle " + short_hash(run.hash) + "... (" +
                   std::to_string(bytes->size()) + " bytes) in " + dir->string() + " (" +
                   format_seconds(took.count()) + ")");
  queue_run(self, hdl, std::move(run));
}

void send_result(broker_ptr self, connection_handle hdl, bool ok, const std::string& text) {
  wire::writer w;
  w.u8(ok ? 1 : 0);
  w.str(text);
  send_frame(self, hdl, wire::frame_type::result, w.bytes());
}

nlohmann::json run_json(const run_record& r) {
  auto metrics = nlohmann::json::parse(r.last_metrics, nullptr, false);
  // "id": the run id as text too, for JSON readers whose numbers are
  // doubles (a browser's), which would round a 63-bit id.
  return {{"run_id", r.id},          {"id", std::to_string(r.id)},          {"app", r.app},
          {"status", r.status},      {"reason", r.reason},
          {"submitted_at", r.submitted_at}, {"started_at", r.started_at},
          {"ended_at", r.ended_at},  {"rounds", r.rounds},
          {"last_metrics", metrics.is_discarded() ? nlohmann::json::object() : metrics},
          {"run_config", r.run_config_text}, {"bundle", r.bundle}};
}

// Sends every file under a run's directory, then the result.
void send_artifacts(broker_ptr self, connection_handle hdl, uint64_t id) {
  auto dir = self->state.opts.state_dir / "runs" / std::to_string(id);
  std::error_code ec;
  size_t files = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    wire::writer w;
    w.str(fs::relative(it->path(), dir).generic_string());
    w.blob(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size());
    send_frame(self, hdl, wire::frame_type::artifact, w.bytes());
    ++files;
  }
  send_result(self, hdl, true, std::to_string(files) + " file(s)");
}

// `stamen ls`, `log`, `stop`, `pull`, and `report`'s `result`.
void on_control(broker_ptr self, connection_handle hdl, peer& pr, const buffer& payload) {
  auto& st = self->state;
  wire::reader r{payload};
  auto verb = r.str("verb", 16);
  auto id = verb ? r.u64("run id") : expected<uint64_t>{verb.error()};
  auto follow = id ? r.u8("follow") : expected<uint8_t>{id.error()};
  auto cert = follow ? r.str("certificate", 32 << 10) : expected<std::string>{follow.error()};
  auto sig = cert ? r.str("signature", 4096) : expected<std::string>{cert.error()};
  if (!sig) return refuse(self, hdl, "malformed control frame: " + sig.error().what, false);
  if (auto ok = authorize_client(self, pr, *cert, *sig); !ok) return refuse(self, hdl, ok.error().what, false);
  pr.kind = peer::role::client;
  if (*verb == "ls") {
    auto runs = st.store->runs();
    if (!runs) return send_result(self, hdl, false, runs.error().what);
    auto out = nlohmann::json::array();
    for (auto& x : *runs) out.push_back(run_json(x));
    return send_result(self, hdl, true, out.dump());
  }
  auto rec = st.store->run(*id);
  if (!rec) return send_result(self, hdl, false, rec.error().what);
  if (!*rec) return send_result(self, hdl, false, "no run " + std::to_string(*id) + " on this superlink");
  if (*verb == "log") {
    auto lines = st.store->log(*id);
    if (!lines) return send_result(self, hdl, false, lines.error().what);
    for (auto& line : *lines) {
      wire::writer w;
      w.str(line);
      send_frame(self, hdl, wire::frame_type::log, w.bytes());
    }
    auto live = st.runs.find(*id);
    if (*follow && live != st.runs.end()) return live->second.followers.push_back(hdl);
    return send_result(self, hdl, (*rec)->status == run_status::completed, run_json(**rec).dump());
  }
  if (*verb == "stop") {
    auto live = st.runs.find(*id);
    if (live == st.runs.end())
      return send_result(self, hdl, false, "run " + std::to_string(*id) + " has " + (*rec)->status);
    st.opts.log.info("superlink: stopping run " + std::to_string(*id) + " at the request of " + pr.where);
    if (!live->second.started) {
      st.queue.erase(std::remove(st.queue.begin(), st.queue.end(), *id), st.queue.end());
      live->second.stop->request();
      self->send(self, finished_atom::value, *id, false, std::string{"stopped before it started"});
    } else {
      live->second.stop->request();
    }
    return send_result(self, hdl, true, "stopping run " + std::to_string(*id));
  }
  if (*verb == "pull") return send_artifacts(self, hdl, *id);
  if (*verb == "result") {
    // What `stamen run --format json` printed for it, for `stamen report`.
    if ((*rec)->result.empty())
      return send_result(self, hdl, false, "run " + std::to_string(*id) + " has no result (it is " +
                                               (*rec)->status + ((*rec)->reason.empty() ? "" : ": " + (*rec)->reason) + ")");
    return send_result(self, hdl, true, (*rec)->result);
  }
  send_result(self, hdl, false, "unknown verb '" + *verb + "'");
}

void on_frame(broker_ptr self, connection_handle hdl, wire::frame f) {
  auto& st = self->state;
  auto p = st.peers.find(hdl);
  if (p == st.peers.end()) return;
  auto& pr = p->second;
  using ft = wire::frame_type;
  if (f.type == ft::ping) return;
  switch (pr.kind) {
    case peer::role::pending:
      if (f.type == ft::hello) return on_hello(self, hdl, pr, f.payload);
      if (f.type == ft::submit) return on_submit(self, hdl, pr, f.payload);
      if (f.type == ft::control) return on_control(self, hdl, pr, f.payload);
      break;
    case peer::role::node:
      if (f.type == ft::fetch) {
        wire::reader r{f.payload};
        auto hash = r.str("bundle hash", 64);
        if (hash && r.finish("fetch")) return send_bundle(self, hdl, pr, *hash);
        break;
      }
      if (f.type == ft::reply) {
        auto e = wire::read_envelope(f.payload);
        if (!e) {
          // A reply that cannot be read is not a reply: the instruction it
          // answered times out (or its node dies) like any lost reply.
          st.opts.log.warn("superlink: " + node_names(pr) +
                           " sent a malformed reply: " + e.error().what);
          return;
        }
        // A link speaks for its own nodes only: a reply naming another
        // node's id is taken as its first node's (and the grid drops it
        // unless the instruction went there).
        if (e->node_id < pr.node_id || e->node_id - pr.node_id >= pr.nodes) e->node_id = pr.node_id;
        self->send(st.grid, reply_atom::value, std::move(*e));
        return;
      }
      break;
    case peer::role::client:
      if (f.type == ft::bundle && pr.awaiting_bundle) return on_submitted_bundle(self, hdl, pr, f.payload);
      break;
  }
  drop(self, hdl, std::string{"unexpected "} + wire::to_string(f.type) + " frame");
}

void on_new_connection(broker_ptr self, connection_handle hdl) {
  auto& st = self->state;
  auto& link = st.opts.link;
  peer pr{peer::role::pending, {}, {}, 0, 0, {},
          wire::frame_assembler{link.max_handshake_frame, link.read_chunk},
          {}, link_liveness{link.heartbeat_s, link.timeout_s}, {}};
  pr.where = self->remote_addr(hdl) + ":" + std::to_string(self->remote_port(hdl));
  pr.nonce.resize(32);
  for (auto& c : pr.nonce) c = static_cast<char>(st.rng());
  auto challenge = wire::write_challenge({pr.nonce, link.heartbeat_s, link.timeout_s,
                                          link.tls.has_value()});
  st.peers.emplace(hdl, std::move(pr));
  self->ack_writes(hdl, true);  // drives the outbox
  send_frame(self, hdl, wire::frame_type::challenge, challenge);
  self->configure_read(hdl, caf::io::receive_policy::exactly(wire::header_size));
}

void on_data(broker_ptr self, caf::io::new_data_msg& m) {
  auto& st = self->state;
  auto p = st.peers.find(m.handle);
  if (p == st.peers.end()) return;
  p->second.alive.heard();
  st.metrics.bytes_in(m.buf.size());
  auto f = read_frame(self, m, p->second.frames);
  if (!f) return drop(self, m.handle, "bad frame: " + f.error().what);
  if (*f) on_frame(self, m.handle, std::move(**f));
}

// The grid sent an instruction to a node's proxy: it goes out on the node's
// connection.
void on_instruct(broker_ptr self, uint64_t node_id, const envelope& e) {
  auto& st = self->state;
  auto n = st.by_node.find(node_id);
  if (n == st.by_node.end()) return;  // gone: its proxy's death answers for this
  auto p = st.peers.find(n->second);
  if (p == st.peers.end()) return;
  p->second.writer.out.push_envelope(wire::frame_type::instruct, e);
  pump(self, n->second, p->second.writer);
  p->second.alive.sent();
  st.metrics.bytes_out(wire::header_size + e.bytes_size() + e.content_size());
}

void on_transferred(broker_ptr self, caf::io::data_transferred_msg& m) {
  auto p = self->state.peers.find(m.handle);
  if (p == self->state.peers.end()) return;
  p->second.writer.in_flight = m.remaining;
  pump(self, m.handle, p->second.writer);
  // Bytes leaving count as life: a peer reading a large frame is not
  // silent towards us, and we are not silent towards it.
  p->second.alive.sent();
}

void on_run_finished(broker_ptr self, uint64_t id, bool ok, const std::string& out) {
  auto& st = self->state;
  auto it = st.runs.find(id);
  if (it == st.runs.end()) return;
  auto& r = it->second;
  if (r.runner.joinable()) r.runner.join();
  std::string status = r.stop->requested() ? run_status::stopped : ok ? run_status::completed : run_status::failed;
  std::string reason = r.stop->requested() ? "stopped by `stamen stop`" : ok ? "" : out;
  std::string line = "superlink: run " + std::to_string(id) + " " + status + (reason.empty() ? "" : ": " + reason);
  st.opts.log.info(line);
  run_log(self, id, "INFO :      " + line);
  check_kept(self, st.store->set_status(id, status, reason));
  if (ok) check_kept(self, st.store->set_result(id, out));
  for (auto hdl : r.followers) send_result(self, hdl, ok && status == run_status::completed, ok ? out : reason);
  if (r.announced) {
    // Nodes drop what is left of the run (its Context, queued instructions).
    wire::writer w;
    w.u64(id);
    for (auto& [h, pr] : st.peers)
      if (pr.kind == peer::role::node) send_frame(self, h, wire::frame_type::run_end, w.bytes());
  }
  if (r.started) --st.started;
  st.runs.erase(it);
  start_pending(self);
}

void on_heartbeat(broker_ptr self) {
  auto& st = self->state;
  std::vector<connection_handle> dead;
  for (auto& [hdl, pr] : st.peers) {
    switch (pr.alive.tick(pr.writer.out.empty())) {
      case link_liveness::verdict::dead: dead.push_back(hdl); break;
      case link_liveness::verdict::ping:
        pr.writer.out.push(wire::frame_type::ping, {});
        pump(self, hdl, pr.writer);
        break;
      case link_liveness::verdict::quiet: break;
    }
  }
  for (auto& hdl : dead)
    drop(self, hdl, "silent for more than " + format_seconds(st.opts.link.timeout_s));
  for (auto& [id, r] : st.runs) {
    if (r.progress_sent) continue;
    r.progress_sent = true;
    wire::writer w;
    w.str(r.progress);
    for (auto hdl : r.followers) send_frame(self, hdl, wire::frame_type::progress, w.bytes());
  }
  self->delayed_send(self, seconds_ns(st.opts.link.heartbeat_s), heartbeat_atom::value);
}

// The HTTP side's GETs, answered here so that state is read on this thread.
std::vector<std::string> on_http(broker_ptr self, const std::string& path) {
  auto& st = self->state;
  auto json = [](nlohmann::json doc) {
    return std::vector<std::string>{"200", "application/json", doc.dump()};
  };
  auto err = [](const std::string& why) { return std::vector<std::string>{"500", "text/plain", why + "\n"}; };
  if (path == "/metrics") {
    auto counts = st.store->count_by_status();
    if (!counts) return err(counts.error().what);
    return {"200", "text/plain; version=0.0.4", st.metrics.render(st.by_node.size(), *counts)};
  }
  if (path == "/") return {"200", "text/html; charset=utf-8", dashboard_page()};
  if (path == "/api/warnings") {
    std::lock_guard<std::mutex> guard{st.warnings->mtx};
    return json(nlohmann::json(std::vector<std::string>(st.warnings->lines.begin(), st.warnings->lines.end())));
  }
  if (path == "/api/runs") {
    auto runs = st.store->runs();
    if (!runs) return err(runs.error().what);
    auto out = nlohmann::json::array();
    for (auto& r : *runs) out.push_back(run_json(r));
    return json(out);
  }
  if (path == "/api/nodes" || path.rfind("/api/nodes?", 0) == 0) {
    // A page of the connected nodes, by id (?offset=K&limit=N, at most
    // 10,000; default the first 1,000): a federation of 100,000 nodes is
    // not one answer, and this broker builds it between frames.
    auto param = [&](const std::string& key, size_t fallback) {
      auto at = path.find(key + "=");
      return at == std::string::npos ? fallback : static_cast<size_t>(std::stoul(path.substr(at + key.size() + 1)));
    };
    size_t offset = param("offset", 0), limit = std::min<size_t>(param("limit", 1000), 10000);
    std::vector<uint64_t> ids;
    ids.reserve(st.by_node.size());
    for (auto& [id, hdl] : st.by_node) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    auto out = nlohmann::json{{"connected", nlohmann::json::array()}, {"known", nlohmann::json::array()},
                              {"connected_total", ids.size()}, {"offset", offset}, {"limit", limit}};
    for (size_t i = offset; i < ids.size() && i < offset + limit; ++i) {
      auto id = ids[i];
      auto hdl = st.by_node.at(id);
      auto& pr = st.peers.at(hdl);
      auto a = st.activity.find(id);
      // Heartbeats are per link: a link's nodes share its last one.
      out["connected"].push_back({{"node_id", id},
                                  {"id", std::to_string(id)},
                                  {"address", pr.where},
                                  {"connected_since", pr.joined_at},
                                  {"last_heartbeat", unix_now() - pr.alive.silent_s()},
                                  {"runs_served", a == st.activity.end() ? 0 : a->second.runs.size()},
                                  {"replies", a == st.activity.end() ? 0 : a->second.replies},
                                  {"failures", a == st.activity.end() ? 0 : a->second.failures}});
    }
    auto known = st.store->nodes(offset, limit);
    auto known_total = st.store->node_count();
    if (!known_total) return err(known_total.error().what);
    out["known_total"] = *known_total;
    if (!known) return err(known.error().what);
    for (auto& k : *known) out["known"].push_back(nlohmann::json::parse(k, nullptr, false));
    return json(out);
  }
  const std::string prefix = "/api/runs/";
  if (path.rfind(prefix, 0) == 0 && path.size() > prefix.size() && path.size() <= prefix.size() + 20 &&
      path.find_first_not_of("0123456789", prefix.size()) == std::string::npos) {
    auto id = std::stoull(path.substr(prefix.size()));
    auto rec = st.store->run(id);
    if (!rec) return err(rec.error().what);
    if (!*rec) return {"404", "text/plain", "no run " + std::to_string(id) + "\n"};
    auto rounds = st.store->rounds(id);
    if (!rounds) return err(rounds.error().what);
    auto doc = run_json(**rec);
    doc["history"] = nlohmann::json::array();
    for (auto& r : *rounds) doc["history"].push_back(nlohmann::json::parse(r, nullptr, false));
    return json(doc);
  }
  return {"404", "text/plain", "not found\n"};
}

// What the store says was not finished when the superlink last stopped:
// pending runs go back in the queue; runs that had started are failed
// (their ServerApp's state went with the process).
void recover_runs(broker_ptr self) {
  auto& st = self->state;
  auto runs = st.store->runs();
  if (!runs) return st.opts.log.error("superlink: " + runs.error().what);
  for (auto& rec : *runs) {
    if (run_status::finished(rec.status)) continue;
    // A run that had started goes on from its last checkpoint, if it has
    // one (the strategy resumes it); one whose checkpoint cannot be read
    // fails with the reason, and the superlink goes on.
    bool resumable = false;
    std::string unreadable;
    if (rec.status != run_status::pending) {
      checkpoint_store cp{st.opts.state_dir / "runs" / std::to_string(rec.id), "run " + std::to_string(rec.id)};
      auto loaded = cp.load();
      if (!loaded) unreadable = loaded.error().what;
      else if (*loaded) {
        auto round = state_value<int64_t>(**loaded, "checkpoint", "round");
        resumable = true;
        auto line = "superlink: resuming run " + std::to_string(rec.id) + " at round " +
                    std::to_string(round ? *round + 1 : 0) + " once enough nodes have reconnected";
        st.opts.log.info(line);
        check_kept(self, st.store->append_log(rec.id, "INFO :      " + line));
      }
    }
    if ((rec.status != run_status::pending && !resumable) || !st.bundles->has(rec.bundle)) {
      auto why = !unreadable.empty()                  ? unreadable
                 : !st.bundles->has(rec.bundle)        ? std::string{"its app bundle is no longer stored"}
                                                       : "the superlink stopped while the run was " + rec.status +
                                                             ", before its first checkpoint";
      st.opts.log.warn("superlink: run " + std::to_string(rec.id) + " failed: " + why);
      check_kept(self, st.store->set_status(rec.id, run_status::failed, why));
      continue;
    }
    auto decoded = decode(rec.run_config, st.opts.codec);
    const config_record* rc =
        decoded && decoded->has_content() ? decoded->content().configs("run_config") : nullptr;
    if (rc == nullptr) {
      check_kept(self, st.store->set_status(rec.id, run_status::failed, "its stored run config is unreadable"));
      continue;
    }
    live_run r;
    r.rec = rec;
    r.decoded = *rc;
    st.opts.log.info("superlink: run " + std::to_string(rec.id) + " of '" + rec.app + "' is pending again");
    st.queue.push_back(rec.id);
    st.runs.emplace(rec.id, std::move(r));
  }
}

caf::behavior superlink_broker(broker_ptr self, superlink_options opts, grid_actor grid,
                               std::shared_ptr<std::unique_ptr<run_store>> store) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.grid = grid;
  st.bundles = std::make_unique<bundle_store>(st.opts.state_dir / "bundles");
  st.store = std::move(*store);
  logger::set_warning_sink([w = st.warnings](const std::string& line) {
    std::lock_guard<std::mutex> guard{w->mtx};
    w->lines.push_back(line);
    if (w->lines.size() > 50) w->lines.pop_front();
  });
  recover_runs(self);
  start_pending(self);
  self->delayed_send(self, seconds_ns(st.opts.link.heartbeat_s), heartbeat_atom::value);
  self->set_down_handler([](caf::down_msg&) {});
  self->set_exit_handler([self](caf::exit_msg& m) {
    logger::set_warning_sink({});
    for (auto& [id, r] : self->state.runs) r.stop->request();
    caf::anon_send_exit(self->state.grid, caf::exit_reason::user_shutdown);
    self->quit(m.reason);
  });
  return {
    [self](listen_atom, uint16_t port, const std::string& bind) -> caf::result<uint16_t> {
      auto p = listen_on(self, port, bind, self->state.opts.link.tls.has_value());
      if (!p) return caf::make_error(caf::sec::cannot_open_port, p.error().what);
      return *p;
    },
    [self](const caf::io::new_connection_msg& m) { on_new_connection(self, m.handle); },
    [self](caf::io::new_data_msg& m) { on_data(self, m); },
    [self](const caf::io::connection_closed_msg& m) { drop(self, m.handle, "connection closed"); },
    [self](const caf::io::acceptor_closed_msg&) {
      self->state.opts.log.error("superlink: the listening socket closed");
    },
    [self](instruct_atom, uint64_t node_id, const envelope& e) { on_instruct(self, node_id, e); },
    [self](caf::io::data_transferred_msg& m) { on_transferred(self, m); },
    [self](log_atom, uint64_t run_id, const std::string& line) { run_log(self, run_id, line); },
    [self](progress_atom, uint64_t run_id, const std::string& text) {
      auto r = self->state.runs.find(run_id);
      if (r == self->state.runs.end()) return;
      r->second.progress = text;
      r->second.progress_sent = false;
    },
    [self](status_atom, uint64_t run_id, const std::string& status) {
      auto& st = self->state;
      auto it = st.runs.find(run_id);
      if (it == st.runs.end()) return;
      auto& r = it->second;
      r.rec.status = status;
      check_kept(self, st.store->set_status(run_id, status));
      // Its ServerApp loaded: the nodes are told now, not before, so that
      // none fetches a bundle for a run that cannot start.
      if (status == run_status::running && !r.announced) {
        r.announced = true;
        for (auto& [h, pr] : st.peers)
          if (pr.kind == peer::role::node) send_run(self, h, r);
      }
    },
    [self](round_atom, uint64_t run_id, int round, const std::string& phase, const std::string& metrics) {
      check_kept(self, self->state.store->add_round(run_id, round, phase, metrics));
    },
    [self](finished_atom, uint64_t run_id, bool ok, const std::string& out) {
      on_run_finished(self, run_id, ok, out);
    },
    [self](heartbeat_atom) { on_heartbeat(self); },
    [self](tally_atom, const std::string& kind, double value) { tally(self, kind, value); },
    [self](tally_atom, uint64_t run_id, uint64_t node_id, const std::string& phase, const std::string& reason) {
      tally_reply(self, run_id, node_id, phase, reason);
    },
    [self](http_atom, const std::string& path) { return on_http(self, path); },
  };
}

}  // namespace

expected<superlink_handle> start_superlink(caf::actor_system& sys, superlink_options opts) {
  if (opts.link.tls)
    if (auto ok = check_tls_files(*opts.link.tls); !ok) return ok.error();
  // Absolute: each run's thread changes its own working directory, and
  // the bundles' and runs' paths must mean the same there.
  opts.state_dir = std::filesystem::absolute(opts.state_dir).lexically_normal();
  // The state is opened before anything listens: an unreadable database or
  // one from a newer version stops the superlink here, with the reason.
  auto store = run_store::open(opts.state_dir);
  if (!store) return store.error();
  auto grid = sys.spawn(grid_behavior, opts.codec, opts.log);
  auto port = opts.port;
  auto bind = opts.bind;
  auto http_opts = opts.http;
  auto held = std::make_shared<std::unique_ptr<run_store>>(std::move(*store));
  auto broker = sys.middleman().spawn_broker(superlink_broker, std::move(opts), grid, held);
  // The listener is opened by the broker itself, in its context.
  caf::scoped_actor self{sys};
  expected<uint16_t> opened = fail(errc::runtime_error, "the superlink did not answer");
  self->request(broker, caf::infinite, listen_atom::value, port, bind)
      .receive([&](uint16_t p) { opened = p; },
               [&](caf::error& err) { opened = fail(errc::io_error, sys.render(err)); });
  if (!opened) {
    caf::anon_send_exit(broker, caf::exit_reason::user_shutdown);
    return opened.error();
  }
  std::shared_ptr<http_service> http;
  if (http_opts) {
    // Each GET is a question to the broker; a broker that does not answer
    // within a few seconds (it is going down) yields a 503.
    auto service = http_service::start(*http_opts, [&sys, broker](const std::string& path) {
      caf::scoped_actor asker{sys};
      http_answer a{503, "text/plain", "the superlink did not answer\n"};
      asker->request(broker, std::chrono::seconds(5), http_atom::value, path)
          .receive([&](std::vector<std::string>& r) { a = http_answer{std::stoi(r[0]), r[1], std::move(r[2])}; },
                   [](caf::error&) {});
      return a;
    });
    if (!service) {
      caf::anon_send_exit(broker, caf::exit_reason::user_shutdown);
      return service.error();
    }
    http = std::move(*service);
  }
  return superlink_handle{broker, grid, *opened, http};
}

}  // namespace stamen
