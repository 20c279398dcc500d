#include "actors/superlink_state.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

#include "actors/node_identity.hpp"
#include "actors/run_store.hpp"
#include "actors/wire_frame.hpp"

namespace stamen::superlink_detail {

namespace fs = std::filesystem;

// Shipping code is remote code execution, and a run's control is its own:
// a client is taken only with a key on the allow-list (proven as a node
// proves its own), unless the superlink was told to take anyone.
expected<void> authorize_client(broker_ptr self, connection_handle hdl, const peer& pr,
                                const std::string& certificate,
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
  auto who = authenticate_peer(certificate, signature, proof_subject(hdl, pr), st.opts.link,
                               st.opts.allowed_submitters, "submitter");
  if (!who) return who.error();
  st.opts.log.info("superlink: submitter " + pr.where + " authenticated as key " +
                   who->fingerprint.substr(0, 16) + "...");
  return {};
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

namespace {

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

}  // namespace

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
  if (auto ok = authorize_client(self, hdl, pr, *cert, *sig); !ok) return refuse(self, hdl, ok.error().what, false);
  pr.kind = peer::role::client;
  if (*verb == "ls") {
    auto runs = st.store->runs();
    if (!runs) return send_result(self, hdl, false, runs.error().what);
    auto out = nlohmann::json::array();
    for (auto& x : *runs) out.push_back(run_json(x));
    return send_result(self, hdl, true, out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
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
    return send_result(self, hdl, (*rec)->status == run_status::completed, run_json(**rec).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
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

}  // namespace stamen::superlink_detail
