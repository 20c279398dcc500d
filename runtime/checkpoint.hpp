#pragma once

// A run's checkpoint: after each completed round, everything a strategy
// needs to go on as if it had never stopped — the global arrays, the round,
// the strategy's own state (its sampling RNG, momentum, optimizer moments,
// clipping norm, ...) and the history it reports — written atomically to
// one file. The runtime installs a checkpoint_store around a ServerApp's
// main (as it does the run's observer); `strategy::start` saves after each
// round and, when the store holds a checkpoint, restores it and resumes at
// the next round. No CAF: plain file work and the message codec.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <random>
#include <vector>
#include <string>

#include "messages/expected.hpp"
#include "messages/record_dict.hpp"
#include "runtime/strategy/strategy_result.hpp"

namespace stamen {

/// One checkpoint file, `<dir>/checkpoint.bin` (Cap'n Proto bytes of a
/// message whose content is the state).
class checkpoint_store {
 public:
  /// `label` says which run the checkpoints belong to (e.g. its app and run
  /// config): load() refuses a checkpoint written under another label.
  explicit checkpoint_store(std::filesystem::path dir, std::string label = {})
      : dir_(std::move(dir)), label_(std::move(label)) {}

  /// The directory the checkpoint lives in, as given.
  const std::filesystem::path& dir() const { return dir_; }
  /// The checkpoint file, `dir()/checkpoint.bin`, as errors name it.
  std::filesystem::path file() const { return dir_ / "checkpoint.bin"; }

  /// The last checkpoint, or none if there is no file. A file that cannot
  /// be read or decoded is an error naming it.
  expected<std::optional<record_dict>> load() const;

  /// Writes `state` to a temporary file, syncs it, renames it over the last
  /// checkpoint and syncs the directory: a crash leaves the old checkpoint
  /// or the new one, never half of either.
  expected<void> save(const record_dict& state);

  /// What the last save cost, for logs and benchmarks.
  double last_save_seconds() const { return last_seconds_; }
  /// Size of the last file written, in bytes; 0 before any save.
  uint64_t last_save_bytes() const { return last_bytes_; }

 private:
  std::filesystem::path dir_;
  std::string label_;
  double last_seconds_ = 0;
  uint64_t last_bytes_ = 0;
};

/// Makes `store` the one that strategies started on this thread checkpoint
/// to, for as long as the scope lives (null: none). Scopes nest.
class checkpoint_scope {
 public:
  /// Enters the scope; `store` must outlive it. The destructor restores the
  /// enclosing scope's store.
  explicit checkpoint_scope(checkpoint_store* store);
  ~checkpoint_scope();
  checkpoint_scope(const checkpoint_scope&) = delete;
  checkpoint_scope& operator=(const checkpoint_scope&) = delete;

 private:
  checkpoint_store* previous_;
};

/// The innermost checkpoint_scope's store on this thread, or null.
checkpoint_store* current_checkpoint_store();

/// A random engine's full state as text, to store as a config value in a
/// strategy's save_state so that a resumed run draws the same numbers.
/// The helpers below are the other pieces of a strategy's state for
/// save_state and restore_state; a missing or malformed piece fails naming
/// `key`.
std::string rng_state(const std::mt19937_64& rng);
/// Sets `rng` from the text rng_state wrote to the config record `key`, value
/// `field`; fails (errc::decode_failed) when it is missing or not an engine
/// state, leaving `rng` as it was.
expected<void> restore_rng(const record_dict& in, const std::string& key, const std::string& field,
                           std::mt19937_64& rng);
/// Stores a list of vectors (e.g. per-node momentum) as the config record
/// `key`: a "count" and one value per vector, named "0", "1", ...; replaces
/// any record of that name.
void save_vectors(record_dict& out, const std::string& key, const std::vector<std::vector<double>>& v);
/// Reads back what save_vectors wrote to `key`, in order; fails
/// (errc::decode_failed) naming the missing entry.
expected<std::vector<std::vector<double>>> load_vectors(const record_dict& in, const std::string& key);
/// A scalar from a config record of the state; fails naming key and field.
template <class T>
expected<T> state_value(const record_dict& in, const std::string& key, const std::string& field) {
  auto* c = in.configs(key);
  auto* v = c ? c->get(field) : nullptr;
  auto* x = v ? std::get_if<T>(v) : nullptr;
  if (x == nullptr) return fail(errc::decode_failed, "strategy state '" + key + "." + field + "' is missing");
  return *x;
}

/// Writes the run's history (per-round reports, the three metric histories
/// and an asynchronous run's versions) into a checkpoint's records, as
/// records named "history.*".
void save_history(const strategy_result& result, record_dict& out);
/// Reads back what save_history wrote into `result`, so that a resumed run
/// reports every round, not only those after the restart; fails
/// (errc::decode_failed) naming the record that is missing or malformed.
expected<void> restore_history(const record_dict& in, strategy_result& result);

}  // namespace stamen
