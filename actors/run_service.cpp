#include "actors/superlink_state.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/blocking_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <nlohmann/json.hpp>

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "actors/in_process_grid.hpp"
#include "actors/node_identity.hpp"
#include "actors/run_store.hpp"
#include "actors/transport.hpp"
#include "actors/wire_frame.hpp"
#include "config/app_bundle.hpp"
#include "messages/codec.hpp"
#include "messages/context.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/logger.hpp"
#include "runtime/report/flower_log.hpp"
#include "runtime/report/progress_line.hpp"
#include "runtime/report/result_json.hpp"
#include "runtime/run_events.hpp"
#include "runtime/server_app.hpp"

namespace stamen::superlink_detail {

namespace fs = std::filesystem;

namespace {

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

// Runs a ServerApp in a blocking actor of its own (it blocks on its grid
// calls, so never on one of the scheduler's threads), which the broker
// monitors, and tells the broker how it ended.
// Loading the app (a dlopen that pulls in LibTorch takes a second or two)
// happens there too: the broker must keep its heartbeats. Every line logged
// on this thread is the run's log.
void run_server_app_actor(caf::actor_system& sys, caf::actor broker, grid_actor grid,
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
    caf::anon_send(broker, finished_atom::value, run_id, false, app.error().what, std::string{});
    return;
  }
  caf::anon_send(broker, status_atom::value, run_id, std::string{run_status::running});
  std::string out;
  std::string partial;  // a failed run's result up to its failure, if its strategy had one
  bool ok = true;
  {
    caf::scoped_actor scoped{sys};
    in_process_grid g{scoped.ptr(), grid, run_id, codec, log};
    g.send_content_in_parts(true);  // every node is behind a connection
    run_events events;
    auto capture = std::make_shared<result_capture>();
    events.add(capture);
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
    // Whatever the app throws, of whatever type, ends this run with the
    // reason, never the superlink and the other runs.
    try {
      auto result = run_server_app((*app)->server, g, ctx, &events, stop.get(), &checkpoints);
      ok = static_cast<bool>(result);
      out = !result ? result.error().what : *result ? to_json(**result) : "{}";
    } catch (const std::exception& e) {
      ok = false;
      out = std::string{"the ServerApp raised "} + e.what();
    } catch (...) {
      ok = false;
      out = "the ServerApp raised an exception not derived from std::exception";
    }
    stop->set_interrupt({});
    if (!ok && capture->result()) partial = to_json(*capture->result());
  }
  logger::set_thread_tee({});
  caf::anon_send(broker, finished_atom::value, run_id, ok, std::move(out), std::move(partial));
}

// Queues an accepted run whose bundle is stored; tells its submitter its id.
void queue_run(broker_ptr self, connection_handle hdl, pending_submit run) {
  auto& st = self->state;
  uint64_t id;
  do id = (random_id(self) >> 1) | 1;
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
  r.rec.owner = run.owner;
  r.rec.signer_certificate = run.signer_certificate;
  r.rec.bundle_signature = run.bundle_signature;
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

}  // namespace

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
    // Monitored: a ServerApp actor that ends without a result (an error
    // in this file, the system going down) still ends its run, with the
    // reason, through the down handler. The actor system waits for it on
    // shutdown, as for every other actor.
    r.server_app = self->system().spawn(
        [&sys = self->system(), broker = caf::actor{self}, grid = st.grid, resolve = st.opts.resolve,
         library = r.rec.library, ctx = std::move(ctx), stop = r.stop, codec = st.opts.codec, log = st.opts.log,
         min_nodes = r.rec.min_nodes](caf::blocking_actor*) mutable {
          run_server_app_actor(sys, broker, grid, std::move(resolve), std::move(library), std::move(ctx),
                               std::move(stop), codec, log, min_nodes);
        });
    self->monitor(r.server_app);
  }
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
  auto bundle_sig = min_nodes ? r.str("bundle signature", 4096) : expected<std::string>{min_nodes.error()};
  if (!bundle_sig) return refuse(self, hdl, "malformed submit: " + bundle_sig.error().what, false);
  if (auto ok = r.finish("submit"); !ok) return refuse(self, hdl, "malformed submit: " + ok.error().what, false);
  if (!is_bundle_hash(*hash))
    return refuse(self, hdl, "submit names no app bundle (a SHA-256 hash); this superlink runs shipped apps only",
                  false);
  auto key = authorize_client(self, hdl, pr, *cert, *sig);
  if (!key) return refuse(self, hdl, key.error().what, false);
  // The submitter's word for its code, which nodes check against the keys
  // they trust: the superlink only vouches that the same key proved this
  // connection.
  if (!cert->empty() || !bundle_sig->empty()) {
    auto signer = verify_bundle_signature(*cert, *bundle_sig, *hash, *library, st.opts.link, {},
                                          "submitter's bundle signature");
    if (!signer) return refuse(self, hdl, signer.error().what, false);
    if (!key->empty() && signer->fingerprint != *key)
      return refuse(self, hdl, "the bundle is signed by another key than the one this submitter proved", false);
  }
  auto decoded = decode(*rc, st.opts.codec);
  const config_record* run_config = decoded && decoded->has_content()
                                        ? decoded->content().configs("run_config")
                                        : nullptr;
  if (run_config == nullptr)
    return refuse(self, hdl, "submit carries no readable run config", false);
  if (!st.opts.resolve) return refuse(self, hdl, "this superlink hosts no apps", false);
  pr.kind = peer::role::client;
  pr.key = *key;
  pr.frames.set_max_length(st.opts.link.max_handshake_frame);
  pending_submit run{*app, *library, *hash,
                     rc->empty() ? buffer{} : buffer::copy_of(rc->data(), rc->size()), *run_config, *min_nodes,
                     *key, *cert, *bundle_sig};
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
  // Hashing, writing and unpacking take as long as the bundle is large:
  // on a thread of their own, so that this broker keeps every node's
  // heartbeat meanwhile. The run is queued when they are done (on_stored).
  pr.storing = std::move(run);
  self->system().spawn([broker = caf::actor{self}, hdl, hash = pr.storing->hash, bytes = std::move(*bytes),
                        root = st.bundles->root()](caf::blocking_actor* worker) {
    bundle_store store{root};
    auto start = std::chrono::steady_clock::now();
    auto dir = store.put(hash, bytes);
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    worker->send(broker, stored_atom::value, hdl, static_cast<bool>(dir),
                 dir ? "stored bundle " + short_hash(hash) + "... (" + std::to_string(bytes.size()) + " bytes) in " +
                           dir->string() + " (" + format_seconds(took.count()) + ")"
                     : dir.error().what);
  });
}

void on_stored(broker_ptr self, connection_handle hdl, bool ok, const std::string& what) {
  auto& st = self->state;
  auto p = st.peers.find(hdl);
  if (p == st.peers.end() || !p->second.storing) {
    if (ok) st.opts.log.info("superlink: " + what + "; its submitter has left, so no run is queued");
    else st.opts.log.warn("superlink: a bundle whose submitter has left was not stored: " + what);
    return;
  }
  auto run = std::move(*p->second.storing);
  p->second.storing.reset();
  if (!ok) return refuse(self, hdl, what, false);
  st.opts.log.info("superlink: " + what);
  queue_run(self, hdl, std::move(run));
}

void on_run_status(broker_ptr self, uint64_t run_id, const std::string& status) {
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
}

void on_run_finished(broker_ptr self, uint64_t id, bool ok, const std::string& out, const std::string& partial) {
  auto& st = self->state;
  auto it = st.runs.find(id);
  if (it == st.runs.end()) return;
  auto& r = it->second;
  if (r.server_app) self->demonitor(r.server_app);
  std::string status = r.stop->requested() ? run_status::stopped : ok ? run_status::completed : run_status::failed;
  std::string reason = r.stop->requested()
                           ? "stopped by `stamen stop`" + (r.stopped_by.empty() ? std::string{} : " from " + r.stopped_by)
                       : ok ? ""
                            : out;
  std::string line = "superlink: run " + std::to_string(id) + " " + status + (reason.empty() ? "" : ": " + reason);
  st.opts.log.info(line);
  run_log(self, id, "INFO :      " + line);
  check_kept(self, st.store->set_status(id, status, reason));
  // A run that did not complete still has the result up to its end (its
  // rounds, their failures): kept for `stamen pull`, and what its
  // submitter gets, with the reason as "error".
  bool completed = ok && status == run_status::completed;
  auto result = ok ? out : partial;
  if (!result.empty()) check_kept(self, st.store->set_result(id, result));
  std::string text = completed ? out : reason;
  if (!completed && !result.empty()) {
    auto doc = nlohmann::json::parse(result, nullptr, false);
    if (doc.is_object()) {
      doc["error"] = reason;
      text = doc.dump(2);
    }
  }
  for (auto hdl : r.followers) send_result(self, hdl, completed, text);
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

}  // namespace stamen::superlink_detail
