#include "actors/run_client.hpp"

#include <caf/io/broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>

#include "actors/handshake.hpp"
#include "actors/link_liveness.hpp"
#include "actors/node_identity.hpp"
#include "actors/transport.hpp"
#include "actors/type_ids.hpp"
#include "actors/wire_frame.hpp"
#include "messages/message.hpp"

namespace stamen {

namespace {

namespace fs = std::filesystem;

// One client of a superlink: a submission, or a control request.
struct run_client_state {
  static inline const char* name = "stamen.run_client";
  std::optional<run_submission> run;
  std::optional<control_request> control;
  std::function<void(const std::string&)> on_log;
  std::function<void(uint64_t)> on_accepted;
  caf::actor waiter;
  std::optional<caf::io::connection_handle> hdl;
  wire::frame_assembler frames{64 << 10};
  link_liveness alive;  ///< with the superlink's settings once it sent them
  uint64_t run_id = 0;
};

using broker_ptr = caf::io::stateful_broker<run_client_state>*;

void finish(broker_ptr self, bool ok, std::string text) {
  auto& st = self->state;
  self->send(st.waiter, finished_atom::value, ok, std::move(text), st.run_id);
  if (st.hdl) self->close(*st.hdl);
  st.hdl.reset();
  self->quit();
}

void send_frame(broker_ptr self, wire::frame_type t, const std::vector<std::byte>& payload) {
  auto& st = self->state;
  wire::append_frame(self->wr_buf(*st.hdl), t, payload);
  self->flush(*st.hdl);
  st.alive.sent();
}

const link_options& link_of(const run_client_state& st) { return st.run ? st.run->link : st.control->link; }

// The first frame: a submission (its bundle's hash; the bytes only when
// asked) or a control request. With TLS the client signs the nonce as a
// node does: the superlink takes either only from keys on its allow-list.
void on_challenge(broker_ptr self, const buffer& payload) {
  auto& st = self->state;
  auto c = wire::read_challenge(payload);
  if (!c) return finish(self, false, "malformed challenge from the superlink: " + c.error().what);
  st.alive.reset(c->heartbeat_s, c->timeout_s);
  node_proof proof;
  if (link_of(st).tls) {
    auto p = answer_challenge(link_of(st), *st.hdl, c->nonce);
    if (!p) return finish(self, false, "cannot prove this client's identity: " + p.error().what);
    proof = std::move(*p);
  }
  wire::writer w;
  if (st.control) {
    w.str(st.control->verb);
    w.u64(st.control->run_id);
    w.u8(st.control->follow ? 1 : 0);
    w.str(proof.certificate);
    w.str(proof.signature);
    return send_frame(self, wire::frame_type::control, w.bytes());
  }
  record_dict content;
  content.insert_or_assign("run_config", st.run->run_config);
  auto msg = make_instruction(std::move(content), "query", server_node_id);
  auto bytes = msg ? encode(*msg, st.run->codec) : expected<buffer>{msg.error()};
  if (!bytes) return finish(self, false, "cannot encode the run config: " + bytes.error().what);
  w.str(st.run->app);
  w.str(st.run->library);
  w.blob(*bytes);
  w.str(st.run->bundle.hash);
  w.str(proof.certificate);
  w.str(proof.signature);
  w.u64(st.run->min_nodes);
  // The submitter's word for its code, which the nodes check (the
  // superlink only passes it on): the bundle's hash and library, signed.
  std::string bundle_signature;
  if (link_of(st).tls) {
    auto signed_bundle = prove_identity(*link_of(st).tls, bundle_statement(st.run->bundle.hash, st.run->library));
    if (!signed_bundle) return finish(self, false, "cannot sign the app bundle: " + signed_bundle.error().what);
    bundle_signature = std::move(signed_bundle->signature);
  }
  w.str(bundle_signature);
  send_frame(self, wire::frame_type::submit, w.bytes());
}

// One pulled file, written where it belongs and nowhere else.
void on_artifact(broker_ptr self, const buffer& payload) {
  auto& st = self->state;
  wire::reader r{payload};
  auto path = r.str("path", 4096);
  auto bytes = path ? r.blob("bytes") : expected<buffer>{path.error()};
  if (!bytes) return finish(self, false, "malformed artifact frame: " + bytes.error().what);
  if (auto ok = check_relative_path(*path, "pulled file"); !ok) return finish(self, false, ok.error().what);
  auto target = fs::path{st.control->pull_dir} / *path;
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  std::ofstream out(target, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes->data()), static_cast<std::streamsize>(bytes->size()));
  out.close();
  if (!out) return finish(self, false, "cannot write '" + target.string() + "'");
  if (st.on_log) st.on_log("pulled " + *path + " (" + std::to_string(bytes->size()) + " bytes)");
}

void on_frame(broker_ptr self, wire::frame f) {
  auto& st = self->state;
  wire::reader r{f.payload};
  switch (f.type) {
    case wire::frame_type::ping: return;
    case wire::frame_type::challenge: return on_challenge(self, f.payload);
    case wire::frame_type::fetch: {
      auto hash = r.str("bundle hash", 64);
      if (!st.run || !hash || *hash != st.run->bundle.hash)
        return finish(self, false, "the superlink asked for a bundle this client did not submit");
      if (st.on_log)
        st.on_log("Sending app bundle " + short_hash(*hash) + "... (" +
                  std::to_string(st.run->bundle.bytes.size()) + " bytes) to the superlink");
      wire::writer w;
      w.str(*hash);
      w.blob(st.run->bundle.bytes);
      return send_frame(self, wire::frame_type::bundle, w.bytes());
    }
    case wire::frame_type::accepted: {
      auto id = r.u64("run id");
      if (!id || !st.run) return finish(self, false, "malformed accepted frame from the superlink");
      st.run_id = *id;
      if (st.on_accepted) st.on_accepted(*id);
      if (st.run->detach) return finish(self, true, "run " + std::to_string(*id) + " submitted");
      return;
    }
    case wire::frame_type::artifact:
      if (st.control && st.control->verb == "pull") return on_artifact(self, f.payload);
      break;
    case wire::frame_type::log: {
      auto line = r.str("line", 1 << 20);
      if (line && st.on_log) st.on_log(*line);
      return;
    }
    case wire::frame_type::progress: {
      // Drawn for a submitter; `stamen log --follow` prints the log to
      // stdout, where a status line on stderr would garble it.
      auto line = r.str("status line", 4096);
      if (line && st.run && st.run->on_progress) st.run->on_progress(*line);
      return;
    }
    case wire::frame_type::result: {
      auto ok = r.u8("ok");
      auto text = ok ? r.str("result", 64 << 20) : expected<std::string>{ok.error()};
      if (!text) return finish(self, false, "malformed result: " + text.error().what);
      return finish(self, *ok != 0, std::move(*text));
    }
    case wire::frame_type::refuse: {
      auto why = r.str("reason", 64 << 10);
      return finish(self, false, std::string{"the superlink refused the "} + (st.run ? "run" : "request") +
                                     ": " + (why ? *why : std::string{"(unreadable reason)"}));
    }
    default: break;
  }
  finish(self, false, std::string{"unexpected "} + wire::to_string(f.type) + " frame from the superlink");
}

caf::behavior client_broker(broker_ptr self, std::optional<run_submission> run,
                            std::optional<control_request> control,
                            std::function<void(const std::string&)> on_log,
                            std::function<void(uint64_t)> on_accepted, caf::actor waiter) {
  auto& st = self->state;
  st.run = std::move(run);
  st.control = std::move(control);
  st.on_log = std::move(on_log);
  st.on_accepted = std::move(on_accepted);
  st.waiter = waiter;
  auto& host = st.run ? st.run->host : st.control->host;
  auto port = st.run ? st.run->port : st.control->port;
  auto hdl = connect_to(self, host, port, link_of(st).tls.has_value(), link_of(st).superlink_name);
  if (!hdl) {
    self->send(waiter, finished_atom::value, false,
               "cannot reach the superlink at " + host + ":" + std::to_string(port) + ": " + hdl.error().what,
               uint64_t{0});
    self->quit();
    return {};
  }
  st.hdl = *hdl;
  // A pulled run's files come in frames up to the link's limit; a result
  // (a run's JSON, with a failure reason per failed reply) or a list of
  // runs can outgrow a handshake's 64 KiB, but not 64 MiB.
  st.frames.set_max_length(st.control && st.control->verb == "pull" ? link_of(st).max_frame
                                                                     : uint64_t{64} << 20);
  st.alive.restart();
  self->configure_read(*hdl, caf::io::receive_policy::exactly(wire::header_size));
  self->delayed_send(self, st.alive.interval(), heartbeat_atom::value);
  return {
    [self](caf::io::new_data_msg& m) {
      auto& st = self->state;
      st.alive.heard();
      auto f = read_frame(self, m, st.frames);
      if (!f) return finish(self, false, "bad frame from the superlink: " + f.error().what);
      if (*f) on_frame(self, std::move(**f));
    },
    [self](const caf::io::connection_closed_msg&) {
      self->state.hdl.reset();
      finish(self, false, "the superlink closed the connection before answering");
    },
    [self](heartbeat_atom) {
      auto& st = self->state;
      if (!st.hdl) return;
      auto verdict = st.alive.tick();
      if (verdict == link_liveness::verdict::dead) return finish(self, false, "the superlink went silent");
      if (verdict == link_liveness::verdict::ping) send_frame(self, wire::frame_type::ping, {});
      self->delayed_send(self, st.alive.interval(), heartbeat_atom::value);
    },
  };
}

run_outcome wait_for_client(caf::actor_system& sys, std::optional<run_submission> run,
                            std::optional<control_request> control,
                            std::function<void(const std::string&)> on_log,
                            std::function<void(uint64_t)> on_accepted) {
  caf::scoped_actor self{sys};
  auto broker = sys.middleman().spawn_broker(client_broker, std::move(run), std::move(control),
                                             std::move(on_log), std::move(on_accepted), caf::actor{self});
  run_outcome out;
  self->receive([&](finished_atom, bool ok, std::string& text, uint64_t run_id) {
    out.ok = ok;
    out.text = std::move(text);
    out.run_id = run_id;
  });
  return out;
}

}  // namespace

run_outcome submit_run(caf::actor_system& sys, const run_submission& run,
                       std::function<void(const std::string&)> on_log,
                       std::function<void(uint64_t)> on_accepted) {
  return wait_for_client(sys, run, std::nullopt, std::move(on_log), std::move(on_accepted));
}

run_outcome control_run(caf::actor_system& sys, const control_request& req,
                        std::function<void(const std::string&)> on_log) {
  return wait_for_client(sys, std::nullopt, req, std::move(on_log), {});
}

}  // namespace stamen
