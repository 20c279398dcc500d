#include "actors/superlink.hpp"

#include <caf/io/broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include "actors/grid_actor.hpp"
#include "actors/handshake.hpp"
#include "actors/in_process_grid.hpp"
#include "actors/link_liveness.hpp"
#include "actors/node_identity.hpp"
#include "actors/transport.hpp"
#include "actors/wire_frame.hpp"
#include "config/app_bundle.hpp"
#include "runtime/flower_log.hpp"
#include "runtime/result_json.hpp"

namespace stamen {

namespace {

using caf::io::connection_handle;

// A submitted run whose bundle the superlink asked its submitter for.
struct pending_submit {
  std::string library;
  std::string hash;
  buffer run_config;  ///< encoded, as sent to nodes
  config_record decoded;
};

struct peer {
  enum class role { pending, node, client };
  role kind = role::pending;
  std::string nonce;
  std::string where;  ///< "host:port", for log lines
  uint64_t node_id = 0;
  supernode_actor proxy;
  wire::frame_assembler frames;
  link_writer writer;
  link_liveness alive;
  std::optional<pending_submit> awaiting_bundle;  ///< a submitter's run, until its bundle is here
};

struct superlink_state {
  static inline const char* name = "stamen.superlink";
  superlink_options opts;
  grid_actor grid;
  std::unordered_map<connection_handle, peer> peers;
  std::unordered_map<uint64_t, connection_handle> by_node;
  std::mt19937_64 rng{std::random_device{}()};
  std::unique_ptr<bundle_store> bundles;
  // The run in progress (one at a time); `running` is set from the moment a
  // submission is accepted, while its bundle is still on the way.
  bool running = false;
  uint64_t run_id = 0;
  std::string library;
  std::string bundle_hash;
  buffer run_config;  ///< encoded, as sent to nodes
  std::optional<connection_handle> submitter;
  std::thread runner;

  ~superlink_state() {
    if (runner.joinable()) runner.detach();  // the process is going down
  }
};

using broker_ptr = caf::io::stateful_broker<superlink_state>*;

void send_frame(broker_ptr self, connection_handle hdl, wire::frame_type t,
                const std::vector<std::byte>& payload) {
  auto p = self->state.peers.find(hdl);
  if (p == self->state.peers.end()) return;
  p->second.writer.out.push(t, payload);
  pump(self, hdl, p->second.writer);
  p->second.alive.sent();
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

// Forgets a connection; a node's proxy dies with it, so the grid answers for
// every instruction the node still owed.
void drop(broker_ptr self, connection_handle hdl, const std::string& why) {
  auto& st = self->state;
  auto p = st.peers.find(hdl);
  if (p == st.peers.end()) return;
  auto& pr = p->second;
  if (pr.kind == peer::role::node) {
    st.opts.log.warn("superlink: node " + std::to_string(pr.node_id) + " at " + pr.where +
                     " disconnected: " + why);
    st.by_node.erase(pr.node_id);
    caf::anon_send_exit(pr.proxy, caf::exit_reason::remote_link_unreachable);
  } else if (pr.kind == peer::role::client && pr.awaiting_bundle) {
    st.opts.log.warn("superlink: submitter at " + pr.where + " left before sending its app bundle: " + why);
    st.running = false;
    st.submitter.reset();
  } else if (pr.kind == peer::role::client && st.submitter == hdl) {
    st.opts.log.warn("superlink: submitter at " + pr.where + " disconnected: " + why);
    st.submitter.reset();  // the run goes on; its log is no longer sent
  } else if (pr.kind == peer::role::client) {
    st.opts.log.debug("superlink: submitter at " + pr.where + " left after its run");
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
  st.peers.erase(p);
  self->close(hdl);
}

void send_run(broker_ptr self, connection_handle hdl) {
  auto& st = self->state;
  wire::writer w;
  w.u64(st.run_id);
  w.str(st.library);
  w.blob(st.run_config);
  w.str(st.bundle_hash);
  send_frame(self, hdl, wire::frame_type::run, w.bytes());
}

// A node asks for a bundle it lacks: it gets the stored bytes as they are
// (it checks them against the hash itself), or none when this superlink
// holds no such bundle.
void send_bundle(broker_ptr self, connection_handle hdl, const peer& pr, const std::string& hash) {
  auto& st = self->state;
  auto bytes = st.bundles->has(hash) ? st.bundles->read(hash) : expected<buffer>{fail(errc::io_error, "")};
  if (!bytes)
    st.opts.log.warn("superlink: node " + std::to_string(pr.node_id) + " asked for bundle " +
                     short_hash(hash) + "..., which is not stored here");
  else
    st.opts.log.info("superlink: sending bundle " + short_hash(hash) + "... (" +
                     std::to_string(bytes->size()) + " bytes) to node " + std::to_string(pr.node_id));
  wire::writer w;
  w.str(hash);
  w.blob(bytes ? *bytes : buffer{});
  send_frame(self, hdl, wire::frame_type::bundle, w.bytes());
}

// The proxy that stands for a remote node in the grid: instructions go to the
// broker, which writes them to the node's connection.
supernode_actor::behavior_type node_proxy(supernode_actor::pointer self, caf::actor broker,
                                          uint64_t node_id) {
  return {
    [=](instruct_atom, envelope& e) {
      caf::anon_send(broker, instruct_atom::value, node_id, std::move(e));
    },
    [](done_atom, envelope&) {},
  };
}

void on_hello(broker_ptr self, connection_handle hdl, peer& pr, const buffer& payload) {
  auto& st = self->state;
  auto h = wire::read_hello(payload);
  if (!h) return refuse(self, hdl, "malformed hello: " + h.error().what, false);
  uint64_t node_id = h->node_id;
  if (st.opts.link.tls || !st.opts.link.allowed_nodes.empty()) {
    // The id is bound to the key that signed this connection's nonce: a node
    // cannot claim another's id, and a restarted node gets its own back.
    auto who = authenticate_node(h->certificate, h->signature, pr.nonce, st.opts.link);
    if (!who) return refuse(self, hdl, who.error().what, false);
    node_id = who->node_id;
    st.opts.log.info("superlink: " + pr.where + " authenticated as key " +
                     who->fingerprint.substr(0, 16) + "...");
  }
  if (node_id != 0 && st.by_node.count(node_id) > 0)
    return refuse(self, hdl, "node id " + std::to_string(node_id) +
                                 " is held by a live connection (retry once it times out)",
                  true);
  if (node_id == 0 || node_id == server_node_id) {
    do node_id = st.rng() >> 1;
    while (node_id == 0 || node_id == server_node_id || st.by_node.count(node_id) > 0);
  }
  pr.kind = peer::role::node;
  pr.node_id = node_id;
  pr.frames.set_max_length(st.opts.link.max_frame);
  pr.proxy = self->spawn(node_proxy, caf::actor{self}, node_id);
  st.by_node.emplace(node_id, hdl);
  wire::writer w;
  w.u64(node_id);
  send_frame(self, hdl, wire::frame_type::accept, w.bytes());
  if (st.running) send_run(self, hdl);
  st.opts.log.info("superlink: node " + std::to_string(node_id) + " joined from " + pr.where +
                   (h->node_config.empty() ? "" : " (" + h->node_config + ")"));
  self->request(st.grid, caf::infinite, register_atom::value, node_id, pr.proxy)
      .then([self, hdl](bool ok) {
        if (!ok) drop(self, hdl, "the grid refused its id");
      });
}

// Runs a ServerApp on a thread of its own (it blocks on its grid calls, so
// never on one of the scheduler's) and tells the broker how it ended.
// Loading the app (a dlopen that pulls in LibTorch takes a second or two)
// happens there too: the broker must keep its heartbeats.
void run_server_thread(caf::actor_system& sys, caf::actor broker, grid_actor grid,
                       app_resolver resolve, std::string library, context ctx,
                       codec_options codec, logger log) {
  auto app = resolve(library, ctx.app_dir);
  if (!app) {
    caf::anon_send(broker, finished_atom::value, false, app.error().what);
    return;
  }
  std::string out;
  bool ok = true;
  {
    caf::scoped_actor scoped{sys};
    in_process_grid g{scoped.ptr(), grid, ctx.run_id, codec, log};
    flower_log shown{log};
    auto result = run_server_app((*app)->server, g, ctx, &shown);
    ok = static_cast<bool>(result);
    out = !result ? result.error().what : *result ? to_json(**result) : "{}";
  }
  caf::anon_send(broker, finished_atom::value, ok, std::move(out));
}

// Starts the accepted run whose bundle is stored.
void begin_run(broker_ptr self, connection_handle hdl, pending_submit run) {
  auto& st = self->state;
  auto p = st.peers.find(hdl);
  st.run_id = (st.rng() >> 1) | 1;
  st.library = run.library;
  st.bundle_hash = run.hash;
  st.run_config = run.run_config;
  for (auto& [id, h] : st.by_node) send_run(self, h);
  caf::actor me{self};
  logger::set_tee([me](const std::string& line) { caf::anon_send(me, log_atom::value, line); });
  st.opts.log.info("superlink: starting run " + std::to_string(st.run_id) + " of '" + run.library +
                   "' (bundle " + short_hash(run.hash) + "...) for " +
                   (p == st.peers.end() ? std::string{"a submitter"} : p->second.where) + " with " +
                   std::to_string(st.by_node.size()) + " node(s) connected");
  context ctx;
  ctx.run_id = st.run_id;
  ctx.node_id = server_node_id;
  ctx.run_config = std::move(run.decoded);
  ctx.app_dir = st.bundles->dir(run.hash).string();
  st.runner = std::thread(run_server_thread, std::ref(self->system()), me, st.grid,
                          st.opts.resolve, run.library, std::move(ctx), st.opts.codec, st.opts.log);
}

// Shipping code is remote code execution: a bundle is taken only from a
// submitter whose key is on the allow-list (proven as a node proves its
// own), unless the superlink was told to take it from anyone.
expected<void> authorize_submitter(broker_ptr self, const peer& pr, const std::string& certificate,
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

void start_run(broker_ptr self, connection_handle hdl, peer& pr, const buffer& payload) {
  auto& st = self->state;
  wire::reader r{payload};
  auto library = r.str("library", 4096);
  auto rc = library ? r.blob("run config") : expected<buffer>{library.error()};
  auto hash = rc ? r.str("bundle hash", 64) : expected<std::string>{rc.error()};
  auto cert = hash ? r.str("certificate", 32 << 10) : expected<std::string>{hash.error()};
  auto sig = cert ? r.str("signature", 4096) : expected<std::string>{cert.error()};
  if (!sig) return refuse(self, hdl, "malformed submit: " + sig.error().what, false);
  if (auto ok = r.finish("submit"); !ok) return refuse(self, hdl, "malformed submit: " + ok.error().what, false);
  if (!is_bundle_hash(*hash))
    return refuse(self, hdl, "submit names no app bundle (a SHA-256 hash); this superlink runs shipped apps only",
                  false);
  if (auto ok = authorize_submitter(self, pr, *cert, *sig); !ok)
    return refuse(self, hdl, ok.error().what, false);
  if (st.running)
    return refuse(self, hdl, "a run (" + std::to_string(st.run_id) + ") is in progress", true);
  auto decoded = decode(*rc, st.opts.codec);
  const config_record* run_config = decoded && decoded->has_content()
                                        ? decoded->content().configs("run_config")
                                        : nullptr;
  if (run_config == nullptr)
    return refuse(self, hdl, "submit carries no readable run config", false);
  if (!st.opts.resolve) return refuse(self, hdl, "this superlink hosts no apps", false);
  pr.kind = peer::role::client;
  pr.frames.set_max_length(st.opts.link.max_handshake_frame);
  st.running = true;
  st.submitter = hdl;
  pending_submit run{*library, *hash, rc->empty() ? buffer{} : buffer::copy_of(rc->data(), rc->size()),
                     *run_config};
  if (st.bundles->has(*hash)) {
    st.opts.log.info("superlink: bundle " + short_hash(*hash) + "... is already stored");
    return begin_run(self, hdl, std::move(run));
  }
  // Only now, from a submitter allowed to ship one, is a frame of a
  // bundle's size read.
  pr.awaiting_bundle = std::move(run);
  pr.frames.set_max_length(st.opts.link.max_frame);
  wire::writer w;
  w.str(*hash);
  send_frame(self, hdl, wire::frame_type::fetch, w.bytes());
}

// The submitter's bundle arrived: checked, stored, and its run starts.
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
  auto fail_run = [&](const std::string& why) {
    st.running = false;
    st.submitter.reset();
    refuse(self, hdl, why, false);
  };
  if (!bytes) return fail_run("malformed bundle frame: " + bytes.error().what);
  if (*hash != run.hash)
    return fail_run("sent bundle " + short_hash(*hash) + "... where " + short_hash(run.hash) + "... was asked for");
  auto start = std::chrono::steady_clock::now();
  auto dir = st.bundles->put(run.hash, *bytes);
  if (!dir) return fail_run(dir.error().what);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  st.opts.log.info("superlink: stored bundle " + short_hash(run.hash) + "... (" +
                   std::to_string(bytes->size()) + " bytes) in " + dir->string() + " (" +
                   format_seconds(took.count()) + ")");
  begin_run(self, hdl, std::move(run));
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
      if (f.type == ft::submit) return start_run(self, hdl, pr, f.payload);
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
          st.opts.log.warn("superlink: node " + std::to_string(pr.node_id) +
                           " sent a malformed reply: " + e.error().what);
          return;
        }
        e->node_id = pr.node_id;  // a node speaks for itself only
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
  peer pr{peer::role::pending, {}, {}, 0, {},
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

void on_run_finished(broker_ptr self, bool ok, const std::string& out) {
  auto& st = self->state;
  logger::set_tee({});
  if (st.runner.joinable()) st.runner.join();
  st.opts.log.info("superlink: run " + std::to_string(st.run_id) +
                   (ok ? " finished" : " failed: " + out));
  if (st.submitter) {
    wire::writer w;
    w.u8(ok ? 1 : 0);
    w.str(out);
    send_frame(self, *st.submitter, wire::frame_type::result, w.bytes());
  }
  st.running = false;
  st.submitter.reset();
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
  self->delayed_send(self, seconds_ns(st.opts.link.heartbeat_s), heartbeat_atom::value);
}

caf::behavior superlink_broker(broker_ptr self, superlink_options opts, grid_actor grid) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.grid = grid;
  st.bundles = std::make_unique<bundle_store>(st.opts.state_dir / "bundles");
  self->delayed_send(self, seconds_ns(st.opts.link.heartbeat_s), heartbeat_atom::value);
  self->set_down_handler([](caf::down_msg&) {});
  self->set_exit_handler([self](caf::exit_msg& m) {
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
    [self](log_atom, const std::string& line) {
      auto& st = self->state;
      if (!st.submitter) return;
      wire::writer w;
      w.str(line);
      send_frame(self, *st.submitter, wire::frame_type::log, w.bytes());
    },
    [self](finished_atom, bool ok, const std::string& out) { on_run_finished(self, ok, out); },
    [self](heartbeat_atom) { on_heartbeat(self); },
  };
}

}  // namespace

expected<superlink_handle> start_superlink(caf::actor_system& sys, superlink_options opts) {
  if (opts.link.tls)
    if (auto ok = check_tls_files(*opts.link.tls); !ok) return ok.error();
  auto grid = sys.spawn(grid_behavior, opts.codec, opts.log);
  auto port = opts.port;
  auto bind = opts.bind;
  auto tls = opts.link.tls;
  auto broker = sys.middleman().spawn_broker(superlink_broker, std::move(opts), grid);
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
  return superlink_handle{broker, grid, *opened};
}

}  // namespace stamen
