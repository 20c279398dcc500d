#include "actors/run_client.hpp"

#include <caf/io/broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <chrono>
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

struct run_client_state {
  static inline const char* name = "stamen.run_client";
  run_submission run;
  std::function<void(const std::string&)> on_log;
  caf::actor waiter;
  std::optional<caf::io::connection_handle> hdl;
  wire::frame_assembler frames{64 << 10};
  link_liveness alive;  ///< with the superlink's settings once it sent them
};

using broker_ptr = caf::io::stateful_broker<run_client_state>*;

void finish(broker_ptr self, bool ok, std::string text) {
  auto& st = self->state;
  self->send(st.waiter, finished_atom::value, ok, std::move(text));
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

void on_frame(broker_ptr self, wire::frame f) {
  auto& st = self->state;
  wire::reader r{f.payload};
  switch (f.type) {
    case wire::frame_type::ping: return;
    case wire::frame_type::challenge: {
      auto c = wire::read_challenge(f.payload);
      if (!c) return finish(self, false, "malformed challenge from the superlink: " + c.error().what);
      st.alive.reset(c->heartbeat_s, c->timeout_s);
      record_dict content;
      content.insert_or_assign("run_config", st.run.run_config);
      auto msg = make_instruction(std::move(content), "query", server_node_id);
      auto bytes = msg ? encode(*msg, st.run.codec) : expected<buffer>{msg.error()};
      if (!bytes) return finish(self, false, "cannot encode the run config: " + bytes.error().what);
      // With TLS the submitter signs the nonce as a node does: the
      // superlink takes bundles only from keys on its allow-list.
      node_proof proof;
      if (st.run.link.tls) {
        auto p = prove_identity(*st.run.link.tls, c->nonce);
        if (!p) return finish(self, false, "cannot prove the submitter's identity: " + p.error().what);
        proof = std::move(*p);
      }
      wire::writer w;
      w.str(st.run.library);
      w.blob(*bytes);
      w.str(st.run.bundle.hash);
      w.str(proof.certificate);
      w.str(proof.signature);
      return send_frame(self, wire::frame_type::submit, w.bytes());
    }
    case wire::frame_type::fetch: {
      auto hash = r.str("bundle hash", 64);
      if (!hash || *hash != st.run.bundle.hash)
        return finish(self, false, "the superlink asked for a bundle this run did not submit");
      if (st.on_log)
        st.on_log("Sending app bundle " + short_hash(*hash) + "... (" +
                  std::to_string(st.run.bundle.bytes.size()) + " bytes) to the superlink");
      wire::writer w;
      w.str(*hash);
      w.blob(st.run.bundle.bytes);
      return send_frame(self, wire::frame_type::bundle, w.bytes());
    }
    case wire::frame_type::log: {
      auto line = r.str("line", 1 << 20);
      if (line && st.on_log) st.on_log(*line);
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
      return finish(self, false, "the superlink refused the run: " +
                                     (why ? *why : std::string{"(unreadable reason)"}));
    }
    default:
      return finish(self, false, std::string{"unexpected "} + wire::to_string(f.type) +
                                     " frame from the superlink");
  }
}

caf::behavior run_client_broker(broker_ptr self, run_submission run,
                                std::function<void(const std::string&)> on_log, caf::actor waiter) {
  auto& st = self->state;
  st.run = std::move(run);
  st.on_log = std::move(on_log);
  st.waiter = waiter;
  auto hdl = connect_to(self, st.run.host, st.run.port, st.run.link.tls.has_value());
  if (!hdl) {
    self->send(waiter, finished_atom::value, false,
               "cannot reach the superlink at " + st.run.host + ":" + std::to_string(st.run.port) +
                   ": " + hdl.error().what);
    self->quit();
    return {};
  }
  st.hdl = *hdl;
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
      finish(self, false, "the superlink closed the connection before the run ended");
    },
    [self](heartbeat_atom) {
      auto& st = self->state;
      if (!st.hdl) return;
      auto verdict = st.alive.tick();
      if (verdict == link_liveness::verdict::dead)
        return finish(self, false, "the superlink went silent during the run");
      if (verdict == link_liveness::verdict::ping) send_frame(self, wire::frame_type::ping, {});
      self->delayed_send(self, st.alive.interval(), heartbeat_atom::value);
    },
  };
}

}  // namespace

run_outcome submit_run(caf::actor_system& sys, const run_submission& run,
                                 std::function<void(const std::string&)> on_log) {
  caf::scoped_actor self{sys};
  auto broker = sys.middleman().spawn_broker(run_client_broker, run, std::move(on_log),
                                             caf::actor{self});
  run_outcome out;
  self->receive([&](finished_atom, bool ok, std::string& text) {
    out.ok = ok;
    out.text = std::move(text);
  });
  return out;
}

}  // namespace stamen
