#include "actors/superlink_state.hpp"

#include <caf/blocking_actor.hpp>

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
// a client is taken only with a key on the allow-list or the admin list
// (proven as a node proves its own), unless the superlink was told to take
// anyone.
expected<std::string> authorize_client(broker_ptr self, connection_handle hdl, const peer& pr,
                                       const std::string& certificate, const std::string& signature) {
  auto& st = self->state;
  if (st.opts.insecure_accept_bundles) return std::string{};
  if (!st.opts.link.tls)
    return fail(errc::invalid_argument,
                "this superlink accepts app bundles only from an authenticated submitter: start it with "
                "TLS and --allow-submitter, or (on a trusted network) with --insecure-accept-bundles");
  if (st.opts.allowed_submitters.empty() && st.opts.admin_submitters.empty())
    return fail(errc::invalid_argument,
                "no submitter may ship app bundles to this superlink (start it with --allow-submitter)");
  auto allowed = st.opts.allowed_submitters;
  allowed.insert(allowed.end(), st.opts.admin_submitters.begin(), st.opts.admin_submitters.end());
  auto who = authenticate_peer(certificate, signature, proof_subject(hdl, pr), st.opts.link, allowed,
                               "submitter");
  if (!who) return who.error();
  st.opts.log.info("superlink: submitter " + pr.where + " authenticated as key " +
                   who->fingerprint.substr(0, 16) + "...");
  return who->fingerprint;
}

namespace {

// Whether the client with `key` may stop, read or pull run `r`: its
// submitter may, and the admin keys; on a superlink that takes anyone,
// anyone may (it has no keys to tell them apart).
expected<void> may_control(const superlink_state& st, const std::string& key, const run_record& r) {
  if (st.opts.insecure_accept_bundles) return {};
  if (!r.owner.empty() && key == r.owner) return {};
  auto& admins = st.opts.admin_submitters;
  if (std::find(admins.begin(), admins.end(), key) != admins.end()) return {};
  return fail(errc::invalid_argument,
              "run " + std::to_string(r.id) + " was submitted by " +
                  (r.owner.empty() ? std::string{"no known key"} : "key " + r.owner.substr(0, 16) + "...") +
                  ": key " + key.substr(0, 16) +
                  "... may not control it (its submitter and the superlink's --admin-key keys may)");
}

}  // namespace

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

// Reads the files under a run's directory on a thread of its own (a run's
// files may be gigabytes, and this broker sends every node's heartbeat),
// then on_artifacts sends them. Regular files only: a symlink in a run's
// directory (its ServerApp may write anything there) is not followed out
// of it. At most `max_pull_bytes` in all; what is past it is named, not sent.
void send_artifacts(broker_ptr self, connection_handle hdl, uint64_t id) {
  auto dir = self->state.opts.state_dir / "runs" / std::to_string(id);
  auto cap = std::min(self->state.opts.max_pull_bytes, self->state.opts.link.max_frame - (64 << 10));
  self->system().spawn([broker = caf::actor{self}, hdl, dir, cap](caf::blocking_actor* worker) {
    std::vector<std::string> files;  // path, bytes, path, bytes, ...
    std::vector<std::string> skipped;
    std::string failed;
    uint64_t total = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      // Lexically: fs::relative would resolve a symlink to where it points.
      auto rel = it->path().lexically_relative(dir).generic_string();
      auto status = it->symlink_status(ec);
      if (ec) break;
      if (fs::is_symlink(status)) {
        skipped.push_back(rel + " (a symbolic link)");
        continue;
      }
      if (!fs::is_regular_file(status)) continue;
      auto size = it->file_size(ec);
      if (ec) break;
      if (total + size > cap) {
        skipped.push_back(rel + " (" + std::to_string(size) + " bytes: past the pull limit of " +
                          std::to_string(cap) + ")");
        continue;
      }
      std::ifstream in(it->path(), std::ios::binary);
      std::string bytes(static_cast<size_t>(size), '\0');
      in.read(bytes.data(), static_cast<std::streamsize>(size));
      if (!in || in.gcount() != static_cast<std::streamsize>(size)) {
        failed = "cannot read " + rel + " of run " + dir.filename().string();
        break;
      }
      total += size;
      files.push_back(std::move(rel));
      files.push_back(std::move(bytes));
    }
    if (ec && failed.empty()) failed = "cannot list run " + dir.filename().string() + "'s files: " + ec.message();
    std::string what = failed;
    if (failed.empty()) {
      what = std::to_string(files.size() / 2) + " file(s)";
      if (!skipped.empty()) {
        what += "; not sent:";
        for (auto& x : skipped) what += " " + x + ";";
        what.pop_back();
      }
    }
    worker->send(broker, artifacts_atom::value, hdl, std::move(files), failed.empty(), std::move(what));
  });
}

}  // namespace

void on_artifacts(broker_ptr self, connection_handle hdl, const std::vector<std::string>& files, bool ok,
                  const std::string& what) {
  if (!ok) return send_result(self, hdl, false, what);
  for (size_t i = 0; i + 1 < files.size(); i += 2) {
    wire::writer w;
    w.str(files[i]);
    w.blob(reinterpret_cast<const std::byte*>(files[i + 1].data()), files[i + 1].size());
    send_frame(self, hdl, wire::frame_type::artifact, w.bytes());
  }
  send_result(self, hdl, true, what);
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
  if (auto ok = r.finish("control"); !ok) return refuse(self, hdl, "malformed control frame: " + ok.error().what, false);
  auto key = authorize_client(self, hdl, pr, *cert, *sig);
  if (!key) return refuse(self, hdl, key.error().what, false);
  pr.kind = peer::role::client;
  pr.key = *key;
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
  if (auto ok = may_control(st, pr.key, **rec); !ok) {
    st.opts.log.warn("superlink: refused '" + *verb + "' of run " + std::to_string(*id) + " to " + pr.where +
                     ": " + ok.error().what);
    return send_result(self, hdl, false, ok.error().what);
  }
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
    live->second.stopped_by = pr.key.empty() ? pr.where : "key " + pr.key.substr(0, 16) + "... at " + pr.where;
    if (!live->second.started) {
      st.queue.erase(std::remove(st.queue.begin(), st.queue.end(), *id), st.queue.end());
      live->second.stop->request();
      self->send(self, finished_atom::value, *id, false, std::string{"stopped before it started"}, std::string{});
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
