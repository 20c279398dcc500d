#include "runtime/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "messages/codec.hpp"
#include "messages/message.hpp"

namespace stamen {

namespace fs = std::filesystem;

namespace {

thread_local checkpoint_store* current = nullptr;

expected<void> sync_path(const fs::path& p, int flags) {
  int fd = ::open(p.c_str(), flags);
  if (fd < 0) return fail(errc::io_error, "cannot open '" + p.string() + "' to sync it");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return fail(errc::io_error, "cannot sync '" + p.string() + "'");
  return {};
}

// One phase_report per index, as parallel lists (a config record holds
// lists of scalars, not records).
void save_reports(const std::vector<phase_report>& reports, const std::string& key, record_dict& out) {
  config_record c;
  std::vector<int64_t> round, sampled, results, failures;
  std::vector<double> seconds;
  for (size_t i = 0; i < reports.size(); ++i) {
    auto& r = reports[i];
    round.push_back(r.round);
    sampled.push_back(static_cast<int64_t>(r.sampled));
    results.push_back(static_cast<int64_t>(r.results));
    failures.push_back(static_cast<int64_t>(r.failures));
    seconds.push_back(r.seconds);
    c.insert_or_assign("reasons." + std::to_string(i), r.failure_reasons);
  }
  c.insert_or_assign("round", round);
  c.insert_or_assign("sampled", sampled);
  c.insert_or_assign("results", results);
  c.insert_or_assign("failures", failures);
  c.insert_or_assign("seconds", seconds);
  out.insert_or_assign(key, std::move(c));
}

template <class T>
const T* list(const config_record& c, const std::string& key, size_t n) {
  auto* v = c.get(key);
  auto* x = v ? std::get_if<T>(v) : nullptr;
  return x != nullptr && x->size() == n ? x : nullptr;
}

expected<void> restore_reports(const record_dict& in, const std::string& key, std::vector<phase_report>& out) {
  auto bad = fail(errc::decode_failed, "checkpoint history '" + key + "' is malformed");
  auto* c = in.configs(key);
  if (c == nullptr) return bad;
  auto* round = c->get("round") ? std::get_if<std::vector<int64_t>>(c->get("round")) : nullptr;
  if (round == nullptr) return bad;
  size_t n = round->size();
  auto* sampled = list<std::vector<int64_t>>(*c, "sampled", n);
  auto* results = list<std::vector<int64_t>>(*c, "results", n);
  auto* failures = list<std::vector<int64_t>>(*c, "failures", n);
  auto* seconds = list<std::vector<double>>(*c, "seconds", n);
  if (!sampled || !results || !failures || !seconds) return bad;
  out.clear();
  for (size_t i = 0; i < n; ++i) {
    phase_report r;
    r.round = static_cast<int>((*round)[i]);
    r.sampled = static_cast<size_t>((*sampled)[i]);
    r.results = static_cast<size_t>((*results)[i]);
    r.failures = static_cast<size_t>((*failures)[i]);
    r.seconds = (*seconds)[i];
    if (auto* reasons = c->get("reasons." + std::to_string(i)))
      if (auto* v = std::get_if<std::vector<std::string>>(reasons)) r.failure_reasons = *v;
    out.push_back(std::move(r));
  }
  return {};
}

// Asynchronous runs report versions: one per index, as parallel lists.
void save_versions(const std::vector<version_report>& versions, record_dict& out) {
  config_record c;
  std::vector<int64_t> version, failures, in_flight;
  std::vector<double> seconds;
  for (size_t i = 0; i < versions.size(); ++i) {
    auto& v = versions[i];
    version.push_back(v.version);
    failures.push_back(static_cast<int64_t>(v.failures));
    in_flight.push_back(static_cast<int64_t>(v.in_flight_min));
    seconds.push_back(v.seconds);
    c.insert_or_assign("staleness." + std::to_string(i), v.staleness);
    c.insert_or_assign("reasons." + std::to_string(i), v.failure_reasons);
  }
  c.insert_or_assign("version", version);
  c.insert_or_assign("failures", failures);
  c.insert_or_assign("in_flight_min", in_flight);
  c.insert_or_assign("seconds", seconds);
  out.insert_or_assign("history.versions", std::move(c));
}

expected<void> restore_versions(const record_dict& in, std::vector<version_report>& out) {
  auto bad = fail(errc::decode_failed, "checkpoint history 'history.versions' is malformed");
  auto* c = in.configs("history.versions");
  if (c == nullptr) return bad;
  auto* version = c->get("version") ? std::get_if<std::vector<int64_t>>(c->get("version")) : nullptr;
  if (version == nullptr) return bad;
  size_t n = version->size();
  auto* failures = list<std::vector<int64_t>>(*c, "failures", n);
  auto* in_flight = list<std::vector<int64_t>>(*c, "in_flight_min", n);
  auto* seconds = list<std::vector<double>>(*c, "seconds", n);
  if (!failures || !in_flight || !seconds) return bad;
  out.clear();
  for (size_t i = 0; i < n; ++i) {
    version_report v;
    v.version = static_cast<int>((*version)[i]);
    v.failures = static_cast<size_t>((*failures)[i]);
    v.in_flight_min = static_cast<size_t>((*in_flight)[i]);
    v.seconds = (*seconds)[i];
    if (auto* x = c->get("staleness." + std::to_string(i)))
      if (auto* t = std::get_if<std::vector<int64_t>>(x)) v.staleness = *t;
    if (auto* x = c->get("reasons." + std::to_string(i)))
      if (auto* r = std::get_if<std::vector<std::string>>(x)) v.failure_reasons = *r;
    out.push_back(std::move(v));
  }
  return {};
}

void save_metrics(const std::map<int, metric_record>& m, const std::string& key, record_dict& out) {
  std::vector<int64_t> rounds;
  for (auto& [round, rec] : m) {
    rounds.push_back(round);
    out.insert_or_assign(key + "." + std::to_string(round), rec);
  }
  out.insert_or_assign(key, config_record{{"rounds", rounds}});
}

expected<void> restore_metrics(const record_dict& in, const std::string& key, std::map<int, metric_record>& m) {
  auto* c = in.configs(key);
  auto* rounds = c && c->get("rounds") ? std::get_if<std::vector<int64_t>>(c->get("rounds")) : nullptr;
  if (rounds == nullptr) return fail(errc::decode_failed, "checkpoint history '" + key + "' is malformed");
  m.clear();
  for (auto r : *rounds) {
    auto* rec = in.metrics(key + "." + std::to_string(r));
    if (rec == nullptr) return fail(errc::decode_failed, "checkpoint history '" + key + "' misses round " + std::to_string(r));
    m[static_cast<int>(r)] = *rec;
  }
  return {};
}

record_dict with_label(const record_dict& state, const std::string& label) {
  record_dict out = state;  // arrays are shared, not copied
  out.insert_or_assign("checkpoint.run", config_record{{"label", label}});
  return out;
}

}  // namespace

expected<std::optional<record_dict>> checkpoint_store::load() const {
  std::error_code ec;
  if (!fs::exists(file(), ec)) return std::optional<record_dict>{};
  std::ifstream in(file(), std::ios::binary);
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (!in && !in.eof()) return fail(errc::io_error, "cannot read checkpoint '" + file().string() + "'");
  codec_options opts;
  auto msg = decode(buffer::copy_of(bytes.data(), bytes.size()), opts);
  if (!msg) return fail(msg.error().code, "checkpoint '" + file().string() + "' is unreadable: " + msg.error().what);
  if (!msg->has_content())
    return fail(errc::decode_failed, "checkpoint '" + file().string() + "' holds no state");
  auto* run = msg->content().configs("checkpoint.run");
  auto* label = run && run->get("label") ? std::get_if<std::string>(run->get("label")) : nullptr;
  if (label == nullptr) return fail(errc::decode_failed, "checkpoint '" + file().string() + "' has no label");
  if (*label != label_)
    return fail(errc::invalid_argument, "checkpoint '" + file().string() + "' was written by another run (" +
                                            *label + "; this one is " + label_ + ")");
  return std::optional<record_dict>{msg->content()};
}

expected<void> checkpoint_store::save(const record_dict& state) {
  auto t0 = std::chrono::steady_clock::now();
  auto msg = make_instruction(with_label(state, label_), "query.checkpoint", 0);
  if (!msg) return msg.error();
  auto bytes = encode(*msg);
  if (!bytes) return fail(bytes.error().code, "cannot encode the checkpoint: " + bytes.error().what);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return fail(errc::io_error, "cannot create '" + dir_.string() + "': " + ec.message());
  auto tmp = dir_ / "checkpoint.bin.tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes->data()), static_cast<std::streamsize>(bytes->size()));
    out.close();
    if (!out) return fail(errc::io_error, "cannot write '" + tmp.string() + "'");
  }
  if (auto ok = sync_path(tmp, O_RDONLY); !ok) return ok;
  fs::rename(tmp, file(), ec);
  if (ec) return fail(errc::io_error, "cannot rename '" + tmp.string() + "': " + ec.message());
  if (auto ok = sync_path(dir_, O_RDONLY | O_DIRECTORY); !ok) return ok;
  last_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  last_bytes_ = bytes->size();
  return {};
}

checkpoint_scope::checkpoint_scope(checkpoint_store* store) : previous_(current) { current = store; }
checkpoint_scope::~checkpoint_scope() { current = previous_; }
checkpoint_store* current_checkpoint_store() { return current; }

std::string rng_state(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

expected<void> restore_rng(const record_dict& in, const std::string& key, const std::string& field,
                           std::mt19937_64& rng) {
  auto text = state_value<std::string>(in, key, field);
  if (!text) return text.error();
  std::istringstream is{*text};
  std::mt19937_64 r;
  is >> r;
  if (!is) return fail(errc::decode_failed, "strategy state '" + key + "." + field + "' is not an RNG state");
  rng = r;
  return {};
}

void save_vectors(record_dict& out, const std::string& key, const std::vector<std::vector<double>>& v) {
  config_record c;
  c.insert_or_assign("count", static_cast<int64_t>(v.size()));
  for (size_t i = 0; i < v.size(); ++i) c.insert_or_assign(std::to_string(i), v[i]);
  out.insert_or_assign(key, std::move(c));
}

expected<std::vector<std::vector<double>>> load_vectors(const record_dict& in, const std::string& key) {
  auto n = state_value<int64_t>(in, key, "count");
  if (!n) return n.error();
  std::vector<std::vector<double>> out;
  for (int64_t i = 0; i < *n; ++i) {
    auto v = state_value<std::vector<double>>(in, key, std::to_string(i));
    if (!v) return v.error();
    out.push_back(std::move(*v));
  }
  return out;
}

void save_history(const strategy_result& result, record_dict& out) {
  save_reports(result.train_rounds, "history.train", out);
  save_reports(result.evaluate_rounds, "history.evaluate", out);
  save_metrics(result.train_metrics_clientapp, "history.train_metrics", out);
  save_metrics(result.evaluate_metrics_clientapp, "history.evaluate_metrics", out);
  save_metrics(result.evaluate_metrics_serverapp, "history.server_metrics", out);
  save_versions(result.versions, out);
}

expected<void> restore_history(const record_dict& in, strategy_result& result) {
  if (auto ok = restore_reports(in, "history.train", result.train_rounds); !ok) return ok;
  if (auto ok = restore_reports(in, "history.evaluate", result.evaluate_rounds); !ok) return ok;
  if (auto ok = restore_metrics(in, "history.train_metrics", result.train_metrics_clientapp); !ok) return ok;
  if (auto ok = restore_metrics(in, "history.evaluate_metrics", result.evaluate_metrics_clientapp); !ok) return ok;
  if (auto ok = restore_metrics(in, "history.server_metrics", result.evaluate_metrics_serverapp); !ok) return ok;
  return restore_versions(in, result.versions);
}

}  // namespace stamen
