#include "actors/node_link.hpp"

#include <caf/io/broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "actors/compute_pool.hpp"
#include "actors/handshake.hpp"
#include "actors/link_liveness.hpp"
#include "actors/node_identity.hpp"
#include "actors/supernode.hpp"
#include "actors/transport.hpp"
#include "actors/wire_frame.hpp"
#include "config/app_bundle.hpp"

namespace stamen {

namespace {

using caf::io::connection_handle;

// A run this link's nodes serve.
struct run_slot {
  std::vector<supernode_actor> nodes;  ///< by index on the link, once built
  bool building = false;        ///< its ClientApps are being built
  std::vector<envelope> early;  ///< instructions for nodes not built yet
  // Its bundle, when asked of the superlink and not here yet.
  std::string fetching;  ///< the hash; empty: nothing asked
  context pending_ctx;
  std::string library;
  std::chrono::steady_clock::time_point fetch_started;
  std::string error;  ///< why this link's nodes cannot serve the run

  void stop_nodes() {
    for (auto& n : nodes)
      if (n) caf::anon_send_exit(n, caf::exit_reason::user_shutdown);
  }
};

struct node_link_state {
  static inline const char* name = "stamen.node_link";
  node_link_options opts;
  std::optional<connection_handle> hdl;
  bool registered = false;
  uint64_t node_id = 0;  ///< the first node's; kept across reconnections, claimed again
  wire::frame_assembler frames{64 << 10};
  link_writer writer;
  link_liveness alive;  ///< with the superlink's settings once it sent them
  double backoff_s = 0;
  node_uplink_actor uplink;
  /// Apps whose per-thread setup was given to the pool (by library path).
  /// Build jobs of two runs may check it at once on two compute threads.
  struct setups_given {
    std::mutex mtx;
    std::set<std::string> apps;
    bool first(const std::string& app) {
      std::lock_guard<std::mutex> guard{mtx};
      return apps.insert(app).second;
    }
  };
  std::shared_ptr<setups_given> thread_ready = std::make_shared<setups_given>();
  /// The trainings of this link's nodes, whatever the run: one at a time
  /// for one node, compute_threads at once for many.
  std::unique_ptr<compute_pool> pool;
  std::shared_ptr<bundle_store> bundles;
  /// The runs this node serves, each with a SuperNode actor (its Context)
  /// of its own.
  std::map<uint64_t, run_slot> runs;
};

using broker_ptr = caf::io::stateful_broker<node_link_state>*;

std::string where(broker_ptr self) {
  return self->state.opts.host + ":" + std::to_string(self->state.opts.port);
}

void send_frame(broker_ptr self, wire::frame_type t, const std::vector<std::byte>& payload) {
  auto& st = self->state;
  if (!st.hdl) return;
  st.writer.out.push(t, payload);
  pump(self, *st.hdl, st.writer);
  st.alive.sent();
}

// Waits, then tries again; each failure in a row doubles the wait up to the cap.
void schedule_reconnect(broker_ptr self, const std::string& why) {
  auto& st = self->state;
  st.backoff_s = st.backoff_s == 0 ? st.opts.backoff_initial_s
                                   : std::min(st.backoff_s * 2, st.opts.backoff_max_s);
  st.opts.log.warn("supernode: " + why + "; reconnecting to " + where(self) + " in " +
                   format_seconds(st.backoff_s));
  self->delayed_send(self, seconds_ns(st.backoff_s), reconnect_atom::value);
}

void disconnect(broker_ptr self, const std::string& why, bool retry = true) {
  auto& st = self->state;
  if (st.hdl) self->close(*st.hdl);
  st.hdl.reset();
  st.registered = false;
  if (retry) schedule_reconnect(self, why);
}

void connect(broker_ptr self) {
  auto& st = self->state;
  if (st.hdl) return;
  auto hdl = connect_to(self, st.opts.host, st.opts.port, st.opts.link.tls.has_value(),
                        st.opts.link.superlink_name);
  if (!hdl) return schedule_reconnect(self, "superlink unreachable (" + hdl.error().what + ")");
  st.hdl = *hdl;
  st.writer = link_writer{};  // nothing of an old connection is resent on a new one
  self->ack_writes(*hdl, true);
  st.frames = wire::frame_assembler{st.opts.link.max_handshake_frame, st.opts.link.read_chunk};
  st.alive.restart();
  self->configure_read(*hdl, caf::io::receive_policy::exactly(wire::header_size));
}

// The uplink a cluster SuperNode sees: registration already happened over the
// network, so it is granted; replies go to the broker, which sends them.
node_uplink_actor::behavior_type uplink(node_uplink_actor::pointer self, caf::actor broker) {
  return {
    [](join_atom, uint64_t, const supernode_actor&) {},
    // The process's nodes end with it: the superlink sees the link go.
    [](leave_atom, uint64_t, caf::actor_id) {},
    [=](reply_atom, envelope& e) { caf::anon_send(broker, reply_atom::value, std::move(e)); },
  };
}

void on_challenge(broker_ptr self, const buffer& payload) {
  auto& st = self->state;
  auto c = wire::read_challenge(payload);
  if (!c) return disconnect(self, "malformed challenge: " + c.error().what);
  st.alive.reset(c->heartbeat_s, c->timeout_s);
  wire::hello h{st.node_id, st.opts.node_config_text, {}, {}, st.opts.nodes};
  if (st.opts.link.tls) {
    auto proof = answer_challenge(st.opts.link, *st.hdl, c->nonce);
    if (!proof) {
      st.opts.log.error("supernode: " + proof.error().what);
      disconnect(self, "cannot prove this node's identity", false);
      return self->quit(caf::sec::invalid_argument);
    }
    h.certificate = std::move(proof->certificate);
    h.signature = std::move(proof->signature);
  }
  send_frame(self, wire::frame_type::hello, wire::write_hello(h));
}

// Answers an instruction this node cannot serve with an error reply, rather
// than letting the strategy wait for its round's timeout.
void answer_unservable(broker_ptr self, const envelope& e, const std::string& why) {
  auto& st = self->state;
  if (!st.hdl) return;
  auto err = make_error_reply_to(e.message_id, e.node_id, {error_code::client_app_raised, why});
  err.meta().message_id = std::to_string(e.node_id) + "-unserved-" + e.message_id;
  if (auto bytes = encode(err, st.opts.codec)) {
    envelope out{err.meta().message_id, e.message_id, e.node_id, 0, std::move(*bytes), {}};
    st.writer.out.push_envelope(wire::frame_type::reply, out);
    pump(self, *st.hdl, st.writer);
  }
}

// This node cannot serve run `id`: every instruction of it, waiting or
// still to come, is answered with `why`.
void fail_run(broker_ptr self, uint64_t id, const std::string& why) {
  auto& st = self->state;
  auto& slot = st.runs[id];
  st.opts.log.error("supernode: cannot serve run " + std::to_string(id) + ": " + why);
  slot.building = false;
  slot.error = why;
  for (auto& e : slot.early) answer_unservable(self, e, why);
  slot.early.clear();
}

void send_fetch(broker_ptr self, run_slot& slot) {
  auto& st = self->state;
  st.opts.log.info("supernode: fetching bundle " + short_hash(slot.fetching) + "... from the superlink");
  slot.fetch_started = std::chrono::steady_clock::now();
  wire::writer w;
  w.str(slot.fetching);
  send_frame(self, wire::frame_type::fetch, w.bytes());
}

// Node i's Context for a run: its own id, and its own partition when the
// link hosts a range of them.
context node_context(const node_link_state& st, const context& run, uint32_t i) {
  context ctx = run;
  ctx.node_id = st.node_id + i;
  if (st.opts.partition_offset)
    ctx.node_config.insert_or_assign("partition-id", static_cast<int64_t>(*st.opts.partition_offset + i));
  return ctx;
}

// Builds a run's ClientApps from its bundle (installing `bytes` into the
// cache first, when they were fetched), one per node of the link. Loading
// the app (a dlopen that pulls in LibTorch) and building a ClientApp
// (loading a data set, a model) take seconds: they run on a compute thread,
// so that this broker keeps its heartbeats. Each node built is sent to the
// broker at once; instructions that arrive before it wait in `early`.
void build_client(broker_ptr self, context ctx, std::string library, std::string hash, buffer bytes) {
  auto& st = self->state;
  std::vector<context> contexts;
  contexts.reserve(st.opts.nodes);
  for (uint32_t i = 0; i < st.opts.nodes; ++i) contexts.push_back(node_context(st, ctx, i));
  st.pool->post([&sys = self->system(), me = caf::actor{self}, ready = st.thread_ready,
                 contexts = std::move(contexts), pool = st.pool.get(), codec = st.opts.codec,
                 uplink = st.uplink, resolve = st.opts.resolve, log = st.opts.log,
                 library = std::move(library), bundles = st.bundles, hash = std::move(hash),
                 bytes = std::move(bytes)]() mutable {
    auto run_id = contexts.front().run_id;
    auto give_up = [&](const std::string& why) {
      caf::anon_send(me, done_atom::value, run_id, uint64_t{0}, supernode_actor{}, why);
    };
    if (bytes.empty()) {
      // From the cache: checked again before its library is loaded (a
      // file changed there since it was unpacked is not what the hash
      // names). A bundle that fails is removed and fetched again.
      if (auto ok = bundles->check(hash); !ok) {
        log.warn("supernode: " + ok.error().what + "; removing it and fetching it again");
        if (auto gone = bundles->remove(hash); !gone) return give_up(gone.error().what);
        caf::anon_send(me, refetch_atom::value, run_id, hash);
        return;
      }
    } else {
      auto start = std::chrono::steady_clock::now();
      auto dir = bundles->put(hash, bytes);
      if (!dir) return give_up(dir.error().what);
      std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      log.info("supernode: installed bundle " + short_hash(hash) + "... (" + std::to_string(bytes.size()) +
               " bytes) in " + dir->string() + " (" + format_seconds(took.count()) + ")");
    }
    auto app = resolve ? resolve(library, bundles->dir(hash))
                       : expected<std::shared_ptr<const app_components>>{
                             fail(errc::config_error, "this node hosts no apps")};
    if (!app) return give_up(app.error().what);
    // An app's per-thread setup (e.g. torch's thread count) applies to
    // every training that follows, on each compute thread: this one now,
    // the others before their next job.
    auto key = (bundles->dir(hash) / ("lib" + library + ".so")).string();
    if (ready->first(key) && (*app)->on_compute_thread_start) {
      (*app)->on_compute_thread_start();
      if (pool->threads() > 1) pool->add_thread_setup((*app)->on_compute_thread_start);
    }
    const auto n = contexts.size();
    std::shared_ptr<const node_common> common;
    for (size_t i = 0; i < n; ++i) {
      std::shared_ptr<const client_app> client;
      try {
        client = (*app)->make_client(contexts[i]);
      } catch (const std::exception& e) {
        return give_up(std::string{"building the ClientApp"} +
                       (n > 1 ? " of node " + std::to_string(contexts[i].node_id) : "") + " failed: " + e.what());
      }
      supernode_config cfg;
      cfg.node_id = contexts[i].node_id;
      cfg.app = std::move(client);
      common = share_common(contexts[i], pool, codec, std::move(common), true);
      cfg.common = common;
      cfg.node_config = std::move(contexts[i].node_config);
      cfg.state = std::move(contexts[i].state);
      auto node = sys.spawn(supernode_behavior, std::move(cfg), uplink);
      caf::anon_send(me, done_atom::value, run_id, static_cast<uint64_t>(i), node, std::string{});
    }
    log.info("supernode: serving run " + std::to_string(run_id) + " of '" + library + "' (bundle " +
             short_hash(hash) + "...)" + (n > 1 ? " with " + std::to_string(n) + " nodes" : ""));
  });
}

// Whose code a run's bundle is: with --trust-submitter keys, it must be
// signed by one of them (the superlink passes the submitter's signature on,
// and cannot make one); without, the node takes what its authenticated
// superlink passes on, and says who signed it.
expected<void> check_signer(const node_link_state& st, const std::string& hash, const std::string& library,
                            const std::string& certificate, const std::string& signature) {
  auto& trusted = st.opts.trusted_submitters;
  if (trusted.empty()) {
    if (!certificate.empty())
      if (auto fp = certificate_fingerprint(certificate))
        st.opts.log.info("supernode: bundle " + short_hash(hash) + "... is signed by submitter key " +
                         fp->substr(0, 16) + "... (not checked: this node trusts no key in particular)");
    return {};
  }
  if (certificate.empty() || signature.empty())
    return fail(errc::invalid_argument, "it is not signed, and this node runs only bundles signed by its "
                                        "--trust-submitter keys");
  auto who = verify_bundle_signature(certificate, signature, hash, library, st.opts.link, trusted, "bundle signer");
  if (!who) return who.error();
  st.opts.log.info("supernode: bundle " + short_hash(hash) + "... is signed by trusted submitter key " +
                   who->fingerprint.substr(0, 16) + "...");
  return {};
}

void on_run(broker_ptr self, const buffer& payload) {
  auto& st = self->state;
  wire::reader r{payload};
  auto run_id = r.u64("run id");
  auto library = run_id ? r.str("library", 4096) : expected<std::string>{run_id.error()};
  auto rc = library ? r.blob("run config") : expected<buffer>{library.error()};
  auto hash = rc ? r.str("bundle hash", 64) : expected<std::string>{rc.error()};
  auto signer = hash ? r.str("signer certificate", 32 << 10) : expected<std::string>{hash.error()};
  auto signature = signer ? r.str("bundle signature", 4096) : expected<std::string>{signer.error()};
  if (signature) {
    if (auto ok = r.finish("run"); !ok) signature = ok.error();
  }
  if (!signature) return st.opts.log.error("supernode: malformed run frame: " + signature.error().what);
  if (auto known = st.runs.find(*run_id); known != st.runs.end()) {
    // Reconnected during the run: the node keeps its Context; a bundle
    // asked for on the lost connection is asked for again.
    if (!known->second.fetching.empty()) send_fetch(self, known->second);
    return;
  }
  auto decoded = decode(*rc, st.opts.codec);
  const config_record* run_config =
      decoded && decoded->has_content() ? decoded->content().configs("run_config") : nullptr;
  if (run_config == nullptr) return st.opts.log.error("supernode: run frame has no readable run config");
  auto& slot = st.runs[*run_id];
  context ctx;
  ctx.run_id = *run_id;
  ctx.node_id = st.node_id;
  ctx.node_config = st.opts.node_config;
  ctx.run_config = *run_config;
  if (!is_bundle_hash(*hash)) return fail_run(self, *run_id, "the run names no app bundle");
  if (!st.opts.accept_bundles)
    return fail_run(self, *run_id,
                    "refusing the run's app bundle: this node has not authenticated the superlink "
                    "(no TLS); start the supernode with TLS, or on a trusted network with "
                    "--insecure-accept-bundles");
  if (auto ok = check_signer(st, *hash, *library, *signer, *signature); !ok)
    return fail_run(self, *run_id, "refusing the run's app bundle: " + ok.error().what);
  ctx.app_dir = st.bundles->dir(*hash).string();
  slot.building = true;
  if (st.bundles->has(*hash)) {
    st.opts.log.info("supernode: bundle " + short_hash(*hash) + "... is in the cache");
    // Kept, should the cached copy fail its check and be fetched again.
    slot.pending_ctx = ctx;
    slot.library = *library;
    return build_client(self, std::move(ctx), *library, *hash, {});
  }
  slot.fetching = *hash;
  slot.pending_ctx = std::move(ctx);
  slot.library = *library;
  // Another run already asked for the same bundle: one fetch serves both.
  for (auto& [id, other] : st.runs)
    if (id != *run_id && other.fetching == *hash) return;
  send_fetch(self, slot);
}

// The superlink's answer to a fetch: every run waiting for that bundle.
void on_bundle(broker_ptr self, const buffer& payload) {
  auto& st = self->state;
  wire::reader r{payload};
  auto hash = r.str("bundle hash", 64);
  auto bytes = hash ? r.blob("bundle") : expected<buffer>{hash.error()};
  if (!bytes) return st.opts.log.warn("supernode: malformed bundle frame: " + bytes.error().what);
  bool first = true;
  for (auto& [id, slot] : st.runs) {
    if (slot.fetching.empty() || slot.fetching != *hash) continue;
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - slot.fetch_started;
    slot.fetching.clear();
    if (bytes->empty()) {
      fail_run(self, id, "the superlink holds no bundle " + short_hash(*hash) + "...");
      continue;
    }
    if (first)
      st.opts.log.info("supernode: received bundle " + short_hash(*hash) + "... (" +
                       std::to_string(bytes->size()) + " bytes) in " + format_seconds(took.count()));
    // Installed once, by the first build; the others find it in the cache.
    build_client(self, std::move(slot.pending_ctx), slot.library, *hash, first ? *bytes : buffer{});
    first = false;
  }
}

// A run ended on the superlink: its SuperNode actor (and Context) goes, and
// what it still had queued is dropped.
void on_run_end(broker_ptr self, const buffer& payload) {
  auto& st = self->state;
  wire::reader r{payload};
  auto id = r.u64("run id");
  if (!id) return;
  auto slot = st.runs.find(*id);
  if (slot == st.runs.end()) return;
  slot->second.stop_nodes();
  st.runs.erase(slot);
  st.opts.log.info("supernode: run " + std::to_string(*id) + " ended");
}

// The run an instruction belongs to: its message id starts "<run id>:".
std::optional<uint64_t> run_of(const envelope& e) {
  auto colon = e.message_id.find(':');
  if (colon == std::string::npos || colon == 0 || colon > 20) return std::nullopt;
  uint64_t id = 0;
  for (size_t i = 0; i < colon; ++i) {
    char c = e.message_id[i];
    if (c < '0' || c > '9') return std::nullopt;
    id = id * 10 + static_cast<uint64_t>(c - '0');
  }
  return id;
}

void on_instruction(broker_ptr self, envelope e) {
  auto& st = self->state;
  if (e.node_id < st.node_id || e.node_id - st.node_id >= st.opts.nodes) {
    // The superlink routes only this link's nodes' instructions here; one
    // for another node is dropped (its round times it out) and said.
    st.opts.log.warn("supernode: instruction '" + e.message_id + "' is for node " + std::to_string(e.node_id) +
                     ", which this link does not host");
    return;
  }
  auto index = e.node_id - st.node_id;
  auto id = run_of(e);
  auto slot = id ? st.runs.find(*id) : st.runs.end();
  if (slot == st.runs.end())
    return answer_unservable(self, e, "node " + std::to_string(e.node_id) + " serves no run " +
                                          (id ? std::to_string(*id) : std::string{"named by '" + e.message_id + "'"}));
  auto& s = slot->second;
  if (index < s.nodes.size() && s.nodes[index]) return self->send(s.nodes[index], instruct_atom::value, std::move(e));
  if (s.building) return s.early.push_back(std::move(e));
  answer_unservable(self, e, !s.error.empty() ? s.error
                                              : "node " + std::to_string(e.node_id) +
                                                    " has no ClientApp for run " + std::to_string(*id));
}

void on_frame(broker_ptr self, wire::frame f) {
  auto& st = self->state;
  using ft = wire::frame_type;
  switch (f.type) {
    case ft::ping: return;
    case ft::challenge: return on_challenge(self, f.payload);
    case ft::accept: {
      wire::reader r{f.payload};
      auto id = r.u64("node id");
      if (!id) return disconnect(self, "malformed accept: " + id.error().what);
      if (st.node_id != 0 && st.node_id != *id) {
        // A new identity means new nodes to the strategy: the old Contexts go.
        for (auto& [run, slot] : st.runs) slot.stop_nodes();
        st.runs.clear();
      }
      st.node_id = *id;
      st.registered = true;
      st.backoff_s = 0;
      // A bundle asked for on a lost connection never comes. The runs still
      // going are announced again right after this accept (and fetch anew);
      // a run that ended meanwhile is not, and its slot would wait forever,
      // holding back every later run of the same bundle (found by
      // tests/nemesis: a node frozen while a run frame waited in its socket).
      for (auto it = st.runs.begin(); it != st.runs.end();)
        it = !it->second.fetching.empty() && it->second.nodes.empty() ? st.runs.erase(it) : std::next(it);
      st.frames.set_max_length(st.opts.link.max_frame);
      st.opts.log.info("supernode: registered with superlink " + where(self) +
                       (st.opts.nodes > 1 ? " as nodes " + std::to_string(st.node_id) + ".." +
                                                std::to_string(st.node_id + st.opts.nodes - 1) + " (" +
                                                std::to_string(st.opts.nodes) + ")"
                                          : " as node " + std::to_string(st.node_id)));
      return;
    }
    case ft::refuse: {
      wire::reader r{f.payload};
      auto why = r.str("reason", 64 << 10);
      auto retry = why ? r.u8("retry") : expected<uint8_t>{why.error()};
      if (retry && *retry) return disconnect(self, "superlink refused: " + *why);
      st.opts.log.error("supernode: superlink refused this node: " +
                        (why ? *why : std::string{"(unreadable reason)"}));
      disconnect(self, "", false);
      return self->quit(caf::sec::invalid_argument);
    }
    case ft::run:
      if (st.registered) return on_run(self, f.payload);
      break;
    case ft::bundle:
      if (st.registered) return on_bundle(self, f.payload);
      break;
    case ft::run_end:
      if (st.registered) return on_run_end(self, f.payload);
      break;
    case ft::instruct:
      if (st.registered) {
        auto e = wire::read_envelope(f.payload);
        if (!e) return st.opts.log.warn("supernode: malformed instruction: " + e.error().what);
        return on_instruction(self, std::move(*e));
      }
      break;
    default: break;
  }
  disconnect(self, std::string{"unexpected "} + wire::to_string(f.type) + " frame from the superlink");
}

void on_data(broker_ptr self, caf::io::new_data_msg& m) {
  auto& st = self->state;
  if (!st.hdl || m.handle != *st.hdl) return;
  st.alive.heard();
  auto f = read_frame(self, m, st.frames);
  if (!f) return disconnect(self, "bad frame from the superlink: " + f.error().what);
  if (*f) on_frame(self, std::move(**f));
}

void on_closed(broker_ptr self, const caf::io::connection_closed_msg& m) {
  auto& st = self->state;
  if (!st.hdl || m.handle != *st.hdl) return;
  st.hdl.reset();
  auto was = st.registered;
  st.registered = false;
  schedule_reconnect(self, was ? "lost the connection to the superlink"
                               : std::string{"the superlink closed the connection before registering"} +
                                     (st.opts.link.tls ? " (TLS handshake refused: wrong CA or certificate?)"
                                                       : " (is it a TLS port?)"));
}

// A node's SuperNode actor for a run is built (or none could be): it gets
// the instructions that came meanwhile.
void on_node_built(broker_ptr self, uint64_t run_id, uint64_t index, supernode_actor node,
                   const std::string& why) {
  auto& st = self->state;
  auto slot = st.runs.find(run_id);
  if (slot == st.runs.end()) {
    // The run ended meanwhile; its node is not needed.
    if (node) caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    return;
  }
  if (!node) return fail_run(self, run_id, why);
  auto& s = slot->second;
  if (s.nodes.size() != st.opts.nodes) s.nodes.resize(st.opts.nodes);
  s.nodes[index] = node;
  if (index + 1 == st.opts.nodes) s.building = false;
  const uint64_t node_id = st.node_id + index;
  std::vector<envelope> waiting;
  for (auto& e : s.early) {
    if (e.node_id == node_id) self->send(node, instruct_atom::value, std::move(e));
    else waiting.push_back(std::move(e));
  }
  s.early = std::move(waiting);
}

void on_heartbeat(broker_ptr self) {
  auto& st = self->state;
  if (st.hdl) {
    switch (st.alive.tick(st.writer.out.empty())) {
      case link_liveness::verdict::dead:
        disconnect(self, "the superlink was silent for more than " +
                             format_seconds(st.alive.timeout_s()));
        break;
      case link_liveness::verdict::ping: send_frame(self, wire::frame_type::ping, {}); break;
      case link_liveness::verdict::quiet: break;
    }
  }
  self->delayed_send(self, st.alive.interval(), heartbeat_atom::value);
}

caf::behavior node_link_broker(broker_ptr self, node_link_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.opts.nodes = std::max<uint32_t>(1, st.opts.nodes);
  st.pool = std::make_unique<compute_pool>(std::max<size_t>(1, st.opts.compute_threads));
  st.bundles = std::make_shared<bundle_store>(st.opts.bundle_cache);
  st.alive.reset(st.opts.link.heartbeat_s, st.opts.link.timeout_s);
  st.uplink = self->spawn(uplink, caf::actor{self});
  self->set_exit_handler([self](caf::exit_msg& m) {
    auto& st = self->state;
    for (auto& [run, slot] : st.runs) slot.stop_nodes();
    caf::anon_send_exit(st.uplink, caf::exit_reason::user_shutdown);
    self->quit(m.reason);
  });
  connect(self);
  self->delayed_send(self, st.alive.interval(), heartbeat_atom::value);
  return {
    [self](caf::io::new_data_msg& m) { on_data(self, m); },
    [self](const caf::io::connection_closed_msg& m) { on_closed(self, m); },
    [self](reconnect_atom) { connect(self); },
    [self](refetch_atom, uint64_t run_id, const std::string& hash) {
      auto& st = self->state;
      auto slot = st.runs.find(run_id);
      if (slot == st.runs.end()) return;
      slot->second.fetching = hash;
      if (st.registered) send_fetch(self, slot->second);
    },
    [self](done_atom, uint64_t run_id, uint64_t index, supernode_actor node, const std::string& why) {
      on_node_built(self, run_id, index, node, why);
    },
    [self](reply_atom, const envelope& e) {
      auto& st = self->state;
      // Not connected: the superlink has already answered for this reply.
      if (!st.hdl || !st.registered) return;
      st.writer.out.push_envelope(wire::frame_type::reply, e);
      pump(self, *st.hdl, st.writer);
      st.alive.sent();
    },
    [self](caf::io::data_transferred_msg& m) {
      auto& st = self->state;
      if (!st.hdl || m.handle != *st.hdl) return;
      st.writer.in_flight = m.remaining;
      pump(self, m.handle, st.writer);
      st.alive.sent();
    },
    [self](heartbeat_atom) { on_heartbeat(self); },
  };
}

}  // namespace

caf::actor start_node_link(caf::actor_system& sys, node_link_options opts) {
  return sys.middleman().spawn_broker(node_link_broker, std::move(opts));
}

}  // namespace stamen
