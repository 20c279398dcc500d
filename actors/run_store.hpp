#pragma once

// A superlink's durable state: its runs (status, times, rounds done, last
// metrics, result), each run's log, per-round metrics and the nodes it has
// seen, in an SQLite database under its state directory. No CAF here: the
// broker calls it, and tests open, corrupt and reopen it on their own.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "messages/buffer.hpp"
#include "messages/expected.hpp"

namespace SQLite {
class Database;
}

namespace stamen {

/// A run's status, as Flower names it.
namespace run_status {
inline constexpr const char* pending = "pending";
inline constexpr const char* starting = "starting";
inline constexpr const char* running = "running";
inline constexpr const char* completed = "finished:completed";
inline constexpr const char* failed = "finished:failed";
inline constexpr const char* stopped = "finished:stopped";
/// True for the three finished:* statuses.
bool finished(const std::string& status);
}  // namespace run_status

struct run_record {
  uint64_t id = 0;
  std::string app;       ///< the app's name
  std::string library;   ///< lib<library>.so in the bundle
  std::string bundle;    ///< the bundle's hash
  buffer run_config;     ///< encoded, as sent to nodes
  std::string run_config_text;
  std::string status = run_status::pending;
  std::string reason;    ///< why it failed or was stopped
  double submitted_at = 0, started_at = 0, ended_at = 0;  ///< Unix seconds; 0: not yet
  int rounds = 0;        ///< rounds (or versions) completed
  std::string last_metrics = "{}";  ///< JSON of the last aggregated metrics
  std::string result;    ///< the strategy's result as JSON, once finished
  /// Nodes to wait for before the ServerApp starts (0: none; its strategy's
  /// own minimum still applies).
  uint64_t min_nodes = 0;
  /// The fingerprint of the key that submitted it: who may stop it, read
  /// its log and pull its files (besides the superlink's admin keys); empty
  /// when the superlink takes runs from anyone (--insecure-accept-bundles).
  std::string owner;
  /// The submitter's certificate (PEM) and its signature of the bundle
  /// (bundle_statement), passed to nodes, which check them against the
  /// submitter keys they trust; empty without TLS.
  std::string signer_certificate;
  std::string bundle_signature;
};

class run_store {
 public:
  /// The database's schema version that this build writes.
  static constexpr int schema_version = 3;

  /// Opens (creating, or migrating from an older version) `<dir>/state.db`.
  /// A file that is not a readable database, or one from a newer schema, is
  /// refused with the reason and left as it is.
  static expected<std::unique_ptr<run_store>> open(const std::filesystem::path& dir);

  ~run_store();
  run_store(const run_store&) = delete;
  run_store& operator=(const run_store&) = delete;

  const std::filesystem::path& file() const { return file_; }

  expected<void> add(const run_record& r);
  /// Sets a run's status (and its reason); stamps started_at on "starting"
  /// and ended_at on a finished:* status.
  expected<void> set_status(uint64_t id, const std::string& status, const std::string& reason = {});
  expected<void> set_result(uint64_t id, const std::string& json);
  /// A round (or version) done, with its aggregated metrics as JSON.
  expected<void> add_round(uint64_t id, int round, const std::string& phase, const std::string& metrics);
  expected<void> append_log(uint64_t id, const std::string& line);

  expected<std::vector<run_record>> runs() const;
  expected<std::optional<run_record>> run(uint64_t id) const;
  /// The run's log lines from the `from`-th on.
  expected<std::vector<std::string>> log(uint64_t id, size_t from = 0) const;

  /// How many runs have each status.
  expected<std::map<std::string, uint64_t>> count_by_status() const;
  /// A run's per-round metrics as JSON objects {round, phase, metrics, at}, in order.
  expected<std::vector<std::string>> rounds(uint64_t id) const;
  /// The nodes seen, as JSON objects {node_id, address, key, first_seen,
  /// last_seen, joins}, in the order they were first seen: `limit` of them
  /// from the `offset`-th.
  expected<std::vector<std::string>> nodes(size_t offset = 0, size_t limit = SIZE_MAX) const;
  /// How many nodes were ever seen.
  expected<uint64_t> node_count() const;

  /// Nodes joined (or joined again) over one link, recorded in one transaction.
  expected<void> node_seen(const std::vector<uint64_t>& node_ids, const std::string& address,
                           const std::string& key);

 private:
  run_store() = default;
  std::filesystem::path file_;
  std::unique_ptr<SQLite::Database> db_;
};

/// Seconds since the Unix epoch, as the store records times.
double unix_now();

}  // namespace stamen
