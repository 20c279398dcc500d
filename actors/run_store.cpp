#include "actors/run_store.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>

namespace stamen {

namespace fs = std::filesystem;

namespace run_status {
bool finished(const std::string& status) { return status.rfind("finished:", 0) == 0; }
}  // namespace run_status

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

namespace {

// Migrations, one per version: migrations[v] takes a database at version v
// to v + 1. A new version appends one; nothing already here changes.
const char* const migrations[] = {
    // 0 -> 1
    "CREATE TABLE runs(id INTEGER PRIMARY KEY, app TEXT NOT NULL, library TEXT NOT NULL,"
    " bundle TEXT NOT NULL, run_config BLOB, run_config_text TEXT NOT NULL, status TEXT NOT NULL,"
    " reason TEXT NOT NULL DEFAULT '', submitted_at REAL NOT NULL, started_at REAL NOT NULL DEFAULT 0,"
    " ended_at REAL NOT NULL DEFAULT 0, rounds INTEGER NOT NULL DEFAULT 0,"
    " last_metrics TEXT NOT NULL DEFAULT '{}', result TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE logs(run_id INTEGER NOT NULL, seq INTEGER NOT NULL, line TEXT NOT NULL,"
    " PRIMARY KEY(run_id, seq));"
    "CREATE TABLE rounds(run_id INTEGER NOT NULL, round INTEGER NOT NULL, phase TEXT NOT NULL,"
    " metrics TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY(run_id, round, phase));"
    "CREATE TABLE nodes(node_id INTEGER PRIMARY KEY, address TEXT NOT NULL, key TEXT NOT NULL,"
    " first_seen REAL NOT NULL, last_seen REAL NOT NULL, joins INTEGER NOT NULL);",
    // 1 -> 2: the nodes a run waits for before it starts (its federation's
    // num-supernodes).
    "ALTER TABLE runs ADD COLUMN min_nodes INTEGER NOT NULL DEFAULT 0;",
    // 2 -> 3: who submitted the run (the key that may control it) and the
    // submitter's signature of its bundle, which nodes check.
    "ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE runs ADD COLUMN signer_certificate TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE runs ADD COLUMN bundle_signature BLOB;",
};
static_assert(sizeof migrations / sizeof *migrations == run_store::schema_version);

template <class F>
auto guarded(const std::string& what, F&& f) -> expected<decltype(f())> {
  try {
    if constexpr (std::is_void_v<decltype(f())>) {
      f();
      return {};
    } else {
      return f();
    }
  } catch (const std::exception& e) {
    return fail(errc::io_error, what + ": " + e.what());
  }
}

run_record read_run(SQLite::Statement& q) {
  run_record r;
  r.id = static_cast<uint64_t>(q.getColumn(0).getInt64());
  r.app = q.getColumn(1).getString();
  r.library = q.getColumn(2).getString();
  r.bundle = q.getColumn(3).getString();
  auto blob = q.getColumn(4);
  if (!blob.isNull() && blob.getBytes() > 0) r.run_config = buffer::copy_of(blob.getBlob(), blob.getBytes());
  r.run_config_text = q.getColumn(5).getString();
  r.status = q.getColumn(6).getString();
  r.reason = q.getColumn(7).getString();
  r.submitted_at = q.getColumn(8).getDouble();
  r.started_at = q.getColumn(9).getDouble();
  r.ended_at = q.getColumn(10).getDouble();
  r.rounds = q.getColumn(11).getInt();
  r.last_metrics = q.getColumn(12).getString();
  r.result = q.getColumn(13).getString();
  r.min_nodes = static_cast<uint64_t>(q.getColumn(14).getInt64());
  r.owner = q.getColumn(15).getString();
  r.signer_certificate = q.getColumn(16).getString();
  auto sig = q.getColumn(17);
  if (!sig.isNull() && sig.getBytes() > 0)
    r.bundle_signature.assign(static_cast<const char*>(sig.getBlob()), static_cast<size_t>(sig.getBytes()));
  return r;
}

constexpr const char* run_columns =
    "id, app, library, bundle, run_config, run_config_text, status, reason, submitted_at, started_at,"
    " ended_at, rounds, last_metrics, result, min_nodes, owner, signer_certificate, bundle_signature";

}  // namespace

run_store::~run_store() = default;

expected<std::unique_ptr<run_store>> run_store::open(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(errc::io_error, "cannot create state directory '" + dir.string() + "': " + ec.message());
  std::unique_ptr<run_store> out{new run_store};
  out->file_ = dir / "state.db";
  auto where = "state database '" + out->file_.string() + "'";
  auto opened = guarded(where + " is unreadable", [&] {
    out->db_ = std::make_unique<SQLite::Database>(out->file_.string(),
                                                  SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    out->db_->setBusyTimeout(5000);
    // Reading the schema is the first thing that touches the file: a
    // truncated or foreign file fails here, before anything is written.
    (void)out->db_->execAndGet("SELECT count(*) FROM sqlite_master").getInt();
    return out->db_->execAndGet("PRAGMA user_version").getInt();
  });
  if (!opened)
    return fail(errc::io_error, opened.error().what +
                                    " (it was left as it is; move it aside to start with an empty state)");
  int version = *opened;
  if (version > schema_version)
    return fail(errc::config_error, where + " has schema version " + std::to_string(version) +
                                        ", newer than this stamen's " + std::to_string(schema_version) +
                                        "; it was left as it is (run a newer stamen on it)");
  auto migrated = guarded("cannot migrate " + where, [&] {
    // WAL: a line of log costs an append, not a sync of the whole file.
    out->db_->exec("PRAGMA journal_mode=WAL");
    out->db_->exec("PRAGMA synchronous=NORMAL");
    for (int v = version; v < schema_version; ++v) {
      SQLite::Transaction t{*out->db_};
      out->db_->exec(migrations[v]);
      out->db_->exec("PRAGMA user_version = " + std::to_string(v + 1));
      t.commit();
    }
  });
  if (!migrated) return migrated.error();
  return out;
}

expected<void> run_store::add(const run_record& r) {
  return guarded("cannot record run " + std::to_string(r.id), [&] {
    SQLite::Statement q{*db_, "INSERT INTO runs(id, app, library, bundle, run_config, run_config_text, status,"
                              " reason, submitted_at, min_nodes, owner, signer_certificate, bundle_signature)"
                              " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"};
    q.bind(1, static_cast<int64_t>(r.id));
    q.bind(2, r.app);
    q.bind(3, r.library);
    q.bind(4, r.bundle);
    q.bind(5, r.run_config.data(), static_cast<int>(r.run_config.size()));
    q.bind(6, r.run_config_text);
    q.bind(7, r.status);
    q.bind(8, r.reason);
    q.bind(9, r.submitted_at);
    q.bind(10, static_cast<int64_t>(r.min_nodes));
    q.bind(11, r.owner);
    q.bind(12, r.signer_certificate);
    q.bind(13, r.bundle_signature.data(), static_cast<int>(r.bundle_signature.size()));
    q.exec();
  });
}

expected<void> run_store::set_status(uint64_t id, const std::string& status, const std::string& reason) {
  return guarded("cannot record run " + std::to_string(id) + "'s status", [&] {
    std::string stamp = status == run_status::starting ? ", started_at = ?3"
                        : run_status::finished(status) ? ", ended_at = ?3"
                                                       : "";
    SQLite::Statement q{*db_, "UPDATE runs SET status = ?1, reason = ?2" + stamp + " WHERE id = ?4"};
    q.bind(1, status);
    q.bind(2, reason);
    if (!stamp.empty()) q.bind(3, unix_now());
    q.bind(4, static_cast<int64_t>(id));
    q.exec();
  });
}

expected<void> run_store::set_result(uint64_t id, const std::string& json) {
  return guarded("cannot record run " + std::to_string(id) + "'s result", [&] {
    SQLite::Statement q{*db_, "UPDATE runs SET result = ? WHERE id = ?"};
    q.bind(1, json);
    q.bind(2, static_cast<int64_t>(id));
    q.exec();
  });
}

expected<void> run_store::add_round(uint64_t id, int round, const std::string& phase,
                                    const std::string& metrics) {
  return guarded("cannot record a round of run " + std::to_string(id), [&] {
    SQLite::Transaction t{*db_};
    SQLite::Statement q{*db_, "INSERT OR REPLACE INTO rounds(run_id, round, phase, metrics, at)"
                              " VALUES(?, ?, ?, ?, ?)"};
    q.bind(1, static_cast<int64_t>(id));
    q.bind(2, round);
    q.bind(3, phase);
    q.bind(4, metrics);
    q.bind(5, unix_now());
    q.exec();
    SQLite::Statement u{*db_, "UPDATE runs SET rounds = max(rounds, ?), last_metrics = ? WHERE id = ?"};
    u.bind(1, round);
    u.bind(2, metrics);
    u.bind(3, static_cast<int64_t>(id));
    u.exec();
    t.commit();
  });
}

expected<void> run_store::append_log(uint64_t id, const std::string& line) {
  return guarded("cannot record run " + std::to_string(id) + "'s log", [&] {
    SQLite::Statement q{*db_, "INSERT INTO logs(run_id, seq, line) VALUES(?1,"
                              " (SELECT coalesce(max(seq), -1) + 1 FROM logs WHERE run_id = ?1), ?2)"};
    q.bind(1, static_cast<int64_t>(id));
    q.bind(2, line);
    q.exec();
  });
}

expected<std::vector<run_record>> run_store::runs() const {
  return guarded("cannot read the runs", [&] {
    std::vector<run_record> out;
    SQLite::Statement q{*db_, std::string{"SELECT "} + run_columns + " FROM runs ORDER BY submitted_at, id"};
    while (q.executeStep()) out.push_back(read_run(q));
    return out;
  });
}

expected<std::optional<run_record>> run_store::run(uint64_t id) const {
  return guarded("cannot read run " + std::to_string(id), [&] {
    SQLite::Statement q{*db_, std::string{"SELECT "} + run_columns + " FROM runs WHERE id = ?"};
    q.bind(1, static_cast<int64_t>(id));
    std::optional<run_record> out;
    if (q.executeStep()) out = read_run(q);
    return out;
  });
}

expected<std::vector<std::string>> run_store::log(uint64_t id, size_t from) const {
  return guarded("cannot read run " + std::to_string(id) + "'s log", [&] {
    std::vector<std::string> out;
    SQLite::Statement q{*db_, "SELECT line FROM logs WHERE run_id = ? AND seq >= ? ORDER BY seq"};
    q.bind(1, static_cast<int64_t>(id));
    q.bind(2, static_cast<int64_t>(from));
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  });
}

expected<void> run_store::node_seen(const std::vector<uint64_t>& node_ids, const std::string& address,
                                    const std::string& key) {
  if (node_ids.empty()) return {};
  return guarded("cannot record node " + std::to_string(node_ids.front()) +
                     (node_ids.size() > 1 ? " and " + std::to_string(node_ids.size() - 1) + " more" : ""),
                 [&] {
                   SQLite::Transaction t{*db_};
                   SQLite::Statement q{*db_,
                                       "INSERT INTO nodes(node_id, address, key, first_seen, last_seen, joins)"
                                       " VALUES(?1, ?2, ?3, ?4, ?4, 1) ON CONFLICT(node_id) DO UPDATE SET"
                                       " address = ?2, key = ?3, last_seen = ?4, joins = joins + 1"};
                   auto now = unix_now();
                   for (auto id : node_ids) {
                     q.bind(1, static_cast<int64_t>(id));
                     q.bind(2, address);
                     q.bind(3, key);
                     q.bind(4, now);
                     q.exec();
                     q.reset();
                   }
                   t.commit();
                 });
}

expected<std::map<std::string, uint64_t>> run_store::count_by_status() const {
  return guarded("cannot count the runs", [&] {
    std::map<std::string, uint64_t> out;
    SQLite::Statement q{*db_, "SELECT status, count(*) FROM runs GROUP BY status"};
    while (q.executeStep()) out[q.getColumn(0).getString()] = static_cast<uint64_t>(q.getColumn(1).getInt64());
    return out;
  });
}

expected<std::vector<std::string>> run_store::rounds(uint64_t id) const {
  return guarded("cannot read run " + std::to_string(id) + "'s rounds", [&] {
    std::vector<std::string> out;
    SQLite::Statement q{*db_, "SELECT json_object('round', round, 'phase', phase, 'metrics', json(metrics),"
                              " 'at', at) FROM rounds WHERE run_id = ? ORDER BY at, round"};
    q.bind(1, static_cast<int64_t>(id));
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  });
}

expected<uint64_t> run_store::node_count() const {
  return guarded("cannot count the nodes", [&] {
    return static_cast<uint64_t>(db_->execAndGet("SELECT count(*) FROM nodes").getInt64());
  });
}

expected<std::vector<std::string>> run_store::nodes(size_t offset, size_t limit) const {
  return guarded("cannot read the nodes", [&] {
    std::vector<std::string> out;
    SQLite::Statement q{*db_, "SELECT json_object('node_id', node_id, 'id', CAST(node_id AS TEXT), 'address', address, 'key', key,"
                              " 'first_seen', first_seen, 'last_seen', last_seen, 'joins', joins)"
                              " FROM nodes ORDER BY first_seen, node_id LIMIT ?1 OFFSET ?2"};
    q.bind(1, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    q.bind(2, static_cast<int64_t>(offset));
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  });
}

}  // namespace stamen
