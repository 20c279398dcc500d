#include "actors/superlink.hpp"

#include <caf/io/broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/grid_actor.hpp"
#include "actors/handshake.hpp"
#include "actors/http_route.hpp"
#include "actors/link_liveness.hpp"
#include "actors/node_identity.hpp"
#include "actors/run_store.hpp"
#include "actors/superlink_state.hpp"
#include "actors/transport.hpp"
#include "actors/wire_frame.hpp"
#include "config/app_bundle.hpp"

namespace stamen {

namespace superlink_detail {

std::string proof_subject(connection_handle hdl, const peer& pr) {
  // Plaintext has no channel to bind to (and a superlink without TLS takes
  // no proof); a TLS session whose keys cannot be exported binds to nothing
  // a peer could have signed, so its proof fails.
  auto binding = channel_binding(hdl);
  return challenge_to_sign(pr.nonce, binding ? *binding : std::string{});
}

uint64_t random_id(broker_ptr self) {
  auto x = random_u64();
  if (x) return *x;
  // OpenSSL without entropy (never seen): the kernel's, through the library.
  self->state.opts.log.error("superlink: " + x.error().what);
  std::random_device dev;
  return uint64_t{dev()} << 32 | dev();
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

void send_run(broker_ptr self, connection_handle hdl, const live_run& r) {
  wire::writer w;
  w.u64(r.rec.id);
  w.str(r.rec.library);
  w.blob(r.rec.run_config);
  w.str(r.rec.bundle);
  w.str(r.rec.signer_certificate);
  w.str(r.rec.bundle_signature);
  send_frame(self, hdl, wire::frame_type::run, w.bytes());
}

// Logs a failure to keep state: the superlink goes on (a run it cannot
// record still runs), and the log says what was not kept.
void check_kept(broker_ptr self, const expected<void>& ok) {
  if (!ok) self->state.opts.log.error("superlink: " + ok.error().what);
}

namespace {

// "node 17", or "nodes 17..1016 (1000)" for a link that carries several.
std::string node_names(const peer& pr) {
  if (pr.nodes <= 1) return "node " + std::to_string(pr.node_id);
  return "nodes " + std::to_string(pr.node_id) + ".." + std::to_string(pr.node_id + pr.nodes - 1) + " (" +
         std::to_string(pr.nodes) + ")";
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

void on_hello(broker_ptr self, connection_handle hdl, peer& pr, const buffer& payload) {
  auto& st = self->state;
  auto h = wire::read_hello(payload);
  if (!h) return refuse(self, hdl, "malformed hello: " + h.error().what, false);
  uint64_t node_id = h->node_id;
  std::string key;
  if (st.opts.link.tls || !st.opts.link.allowed_nodes.empty()) {
    // The id is bound to the key that signed this connection's nonce: a node
    // cannot claim another's id, and a restarted node gets its own back.
    auto who = authenticate_node(h->certificate, h->signature, proof_subject(hdl, pr), st.opts.link);
    if (!who) return refuse(self, hdl, who.error().what, false);
    node_id = who->node_id;
    key = who->fingerprint;
    st.opts.log.info("superlink: " + pr.where + " authenticated as key " +
                     who->fingerprint.substr(0, 16) + "...");
  }
  const uint64_t n = h->nodes;
  if (n > st.opts.max_link_nodes)
    return refuse(self, hdl, "a link may host at most " + std::to_string(st.opts.max_link_nodes) +
                                 " nodes on this superlink; this one claims " + std::to_string(n),
                  false);
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
    do node_id = random_id(self) >> 1;
    while (!usable(node_id));
  }
  pr.kind = peer::role::node;
  pr.node_id = node_id;
  pr.nodes = static_cast<uint32_t>(n);
  // Until it owes a reply, a node sends small frames only (fetch, ping):
  // the handshake limit stays.
  pr.frames.set_max_length(st.opts.link.max_handshake_frame);
  pr.frames.set_discard_limit(st.opts.link.max_frame);
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
      if (f.type == ft::reply && f.discarded > 0) {
        // Read and dropped, nothing allocated for it: a reply no
        // instruction on this connection asked for (a late one from
        // before a reconnection, or a claim of memory).
        st.opts.log.warn("superlink: " + node_names(pr) + " sent a reply of " + std::to_string(f.discarded) +
                         " bytes while owing none; it was dropped unread");
        return;
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
        if (pr.owed > 0 && --pr.owed == 0) pr.frames.set_max_length(st.opts.link.max_handshake_frame);
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
          {}, link_liveness{link.heartbeat_s, link.timeout_s}, {}, {}, 0, std::chrono::steady_clock::now(), 0, {}};
  pr.where = self->remote_addr(hdl) + ":" + std::to_string(self->remote_port(hdl));
  // Connections that have not said who they are cost a peer each and a
  // TLS session: past the cap, a new one is closed before its handshake.
  auto pending = std::count_if(st.peers.begin(), st.peers.end(),
                               [](auto& p) { return p.second.kind == peer::role::pending; });
  if (static_cast<size_t>(pending) >= st.opts.max_pending_peers) {
    st.opts.log.warn("superlink: closed a connection from " + pr.where + ": " + std::to_string(pending) +
                     " connections have not said who they are yet (the most this superlink takes)");
    self->close(hdl);
    return;
  }
  auto nonce = random_nonce(32);
  if (!nonce) {
    st.opts.log.error("superlink: no nonce for " + pr.where + ": " + nonce.error().what);
    self->close(hdl);
    return;
  }
  pr.nonce = std::move(*nonce);
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
  // Whatever a peer's frame makes throw (an allocation it claimed, a bug)
  // costs that peer its connection, never the superlink and its runs.
  try {
    auto f = read_frame(self, m, p->second.frames);
    if (!f) return drop(self, m.handle, "bad frame: " + f.error().what);
    if (!*f) return;
    on_frame(self, m.handle, std::move(**f));
  } catch (const std::exception& e) {
    self->state.opts.log.error("superlink: a frame from a peer raised " + std::string{e.what()});
    drop(self, m.handle, std::string{"internal error on its frame: "} + e.what());
  } catch (...) {
    self->state.opts.log.error("superlink: a frame from a peer raised a non-standard exception");
    drop(self, m.handle, "internal error on its frame");
  }
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
  // It owes a reply now: a frame of a reply's size is believed.
  if (p->second.owed++ == 0) p->second.frames.set_max_length(st.opts.link.max_frame);
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

void on_heartbeat(broker_ptr self) {
  auto& st = self->state;
  std::vector<connection_handle> dead, unknown;
  auto now = std::chrono::steady_clock::now();
  for (auto& [hdl, pr] : st.peers) {
    // Pings keep a link alive, not a handshake that never ends.
    if (pr.kind == peer::role::pending &&
        std::chrono::duration<double>(now - pr.connected_at).count() > st.opts.handshake_timeout_s) {
      unknown.push_back(hdl);
      continue;
    }
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
  for (auto& hdl : unknown)
    drop(self, hdl, "no hello, submit or control within " + format_seconds(st.opts.handshake_timeout_s));
  for (auto& [id, r] : st.runs) {
    if (r.progress_sent) continue;
    r.progress_sent = true;
    wire::writer w;
    w.str(r.progress);
    for (auto hdl : r.followers) send_frame(self, hdl, wire::frame_type::progress, w.bytes());
  }
}

// Runs one of the broker's handlers: whatever it throws (a bug, memory
// that is not there) is logged and costs that one event, never the broker,
// its connections and its runs. A frame's own errors are handled in
// on_data, where the peer that sent it loses its connection.
template <class F>
void guarded(broker_ptr self, const char* what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    self->state.opts.log.error(std::string{"superlink: "} + what + " raised " + e.what());
  } catch (...) {
    self->state.opts.log.error(std::string{"superlink: "} + what + " raised a non-standard exception");
  }
}

// A monitored actor ended: a run's ServerApp that ended without telling
// how (its finished message always comes first otherwise) fails its run.
void on_down(broker_ptr self, const caf::down_msg& m) {
  auto& st = self->state;
  for (auto& [id, r] : st.runs) {
    if (!r.server_app || r.server_app.address() != m.source) continue;
    auto run_id = id;
    r.server_app = caf::actor{};
    return on_run_finished(self, run_id, false,
                           "its ServerApp actor ended without a result (" + to_string(m.reason) + ")", std::string{});
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
  guarded(self, "recovering the stored runs", [&] { recover_runs(self); });
  guarded(self, "starting pending runs", [&] { start_pending(self); });
  self->delayed_send(self, seconds_ns(st.opts.link.heartbeat_s), heartbeat_atom::value);
  self->set_down_handler([self](caf::down_msg& m) { guarded(self, "a down message", [&] { on_down(self, m); }); });
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
    [self](const caf::io::new_connection_msg& m) {
      guarded(self, "a new connection", [&] { on_new_connection(self, m.handle); });
    },
    [self](caf::io::new_data_msg& m) { on_data(self, m); },
    [self](const caf::io::connection_closed_msg& m) {
      guarded(self, "a closed connection", [&] { drop(self, m.handle, "connection closed"); });
    },
    [self](const caf::io::acceptor_closed_msg&) {
      self->state.opts.log.error("superlink: the listening socket closed");
    },
    [self](instruct_atom, uint64_t node_id, const envelope& e) {
      guarded(self, "an instruction", [&] { on_instruct(self, node_id, e); });
    },
    [self](caf::io::data_transferred_msg& m) { guarded(self, "a write", [&] { on_transferred(self, m); }); },
    [self](log_atom, uint64_t run_id, const std::string& line) {
      guarded(self, "a run's log line", [&] { run_log(self, run_id, line); });
    },
    [self](progress_atom, uint64_t run_id, const std::string& text) {
      auto r = self->state.runs.find(run_id);
      if (r == self->state.runs.end()) return;
      r->second.progress = text;
      r->second.progress_sent = false;
    },
    [self](status_atom, uint64_t run_id, const std::string& status) {
      guarded(self, "a run's status", [&] { on_run_status(self, run_id, status); });
    },
    [self](round_atom, uint64_t run_id, int round, const std::string& phase, const std::string& metrics) {
      guarded(self, "a run's round", [&] {
        check_kept(self, self->state.store->add_round(run_id, round, phase, metrics));
      });
    },
    [self](finished_atom, uint64_t run_id, bool ok, const std::string& out, const std::string& partial) {
      guarded(self, "a run's end", [&] { on_run_finished(self, run_id, ok, out, partial); });
    },
    [self](heartbeat_atom) {
      guarded(self, "a heartbeat", [&] { on_heartbeat(self); });
      self->delayed_send(self, seconds_ns(self->state.opts.link.heartbeat_s), heartbeat_atom::value);
    },
    [self](stored_atom, connection_handle hdl, bool ok, const std::string& what) {
      guarded(self, "a stored bundle", [&] { on_stored(self, hdl, ok, what); });
    },
    [self](artifacts_atom, connection_handle hdl, const std::vector<std::string>& files, bool ok,
           const std::string& what) {
      guarded(self, "a pull's files", [&] { on_artifacts(self, hdl, files, ok, what); });
    },
    [self](tally_atom, const std::string& kind, double value) {
      guarded(self, "a tally", [&] { tally(self, kind, value); });
    },
    [self](tally_atom, uint64_t run_id, uint64_t node_id, const std::string& phase, const std::string& reason) {
      guarded(self, "a tally", [&] { tally_reply(self, run_id, node_id, phase, reason); });
    },
    [self](http_atom, const std::vector<std::string>& request) {
      try {
        return on_http(self, request);
      } catch (const std::exception& e) {
        self->state.opts.log.error(std::string{"superlink: an HTTP request raised "} + e.what());
        return std::vector<std::string>{"500", "text/plain", std::string{"internal error: "} + e.what() + "\n"};
      }
    },
  };
}

}  // namespace

}  // namespace superlink_detail

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
  auto broker =
      sys.middleman().spawn_broker(superlink_detail::superlink_broker, std::move(opts), grid, held);
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
    auto service = http_service::start(*http_opts, [&sys, broker](const std::string& path,
                                                                   const std::multimap<std::string, std::string>& query) {
      caf::scoped_actor asker{sys};
      http_answer a{503, "text/plain", "the superlink did not answer\n"};
      // The path, then the query's pairs (a few: the API reads two).
      std::vector<std::string> request{path};
      for (auto& [k, v] : query) {
        if (request.size() > 32) break;
        request.push_back(k);
        request.push_back(v);
      }
      asker->request(broker, std::chrono::seconds(5), http_atom::value, request)
          .receive(
              [&](std::vector<std::string>& r) {
                auto status = r.size() == 3 ? parse_decimal(r[0], "status") : expected<uint64_t>{0};
                if (status && *status != 0) a = http_answer{static_cast<int>(*status), r[1], std::move(r[2])};
              },
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
