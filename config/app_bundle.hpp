#pragma once

// An app bundle (Flower's FAB): what `stamen run` ships to a cluster so that
// no host needs the app installed. It holds the app's stamen.toml, its built
// library and the files its [app] `files` key declares, packed into one
// compressed blob named by the SHA-256 of its bytes. The superlink stores
// bundles by that hash, nodes cache them by it, and everyone who receives one
// checks the bytes against the hash before unpacking anything.
//
// No CAF here: packing, checking and unpacking are plain file work, tested
// on their own.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "config/app_config.hpp"
#include "messages/buffer.hpp"
#include "messages/expected.hpp"

namespace stamen {

/// A packed app: its bytes and their SHA-256 (64 lowercase hex digits).
struct app_bundle {
  std::string hash;
  buffer bytes;
};

/// Limits on what an unpacked bundle may hold, checked before anything is
/// written: a bundle is data from another host.
struct bundle_limits {
  uint64_t max_unpacked_bytes = uint64_t{4} << 30;
  uint64_t max_entries = 100000;
};

/// SHA-256 of `[data, data + size)` as 64 lowercase hex digits.
std::string sha256_hex(const std::byte* data, size_t size);

/// True for 64 lowercase hex digits (what a hash must look like before it
/// names a file).
bool is_bundle_hash(const std::string& s);

/// Checks a relative path that came from another host before it names a
/// file: no absolute path, no "", "." or ".." component, no NUL.
expected<void> check_relative_path(const std::string& path, const std::string& what = "bundle entry");

/// The first 12 digits of a hash, for log lines.
inline std::string short_hash(const std::string& hash) { return hash.substr(0, 12); }

/// Packs an app: `cfg.dir`'s stamen.toml as `stamen.toml`, `library_file` as
/// `lib<cfg.library>.so`, and each path of `cfg.files` (relative to
/// `cfg.dir`; a directory brings everything under it) at the same relative
/// path. Entries are sorted by path, so the same files give the same hash.
expected<app_bundle> pack_app_bundle(const app_config& cfg, const std::filesystem::path& library_file);

/// Checks that `bytes` hash to `hash`; the failure names both hashes.
expected<void> verify_bundle(const std::string& hash, const buffer& bytes);

/// Unpacks bundle bytes into `dir` (which must exist and be empty). Fails,
/// naming the entry, on a malformed bundle, a path that is absolute or
/// climbs out of `dir`, or one past `limits`.
expected<void> unpack_bundle(const buffer& bytes, const std::filesystem::path& dir,
                             const bundle_limits& limits = {});

/// Bundles on disk, by hash: `<root>/<hash>.bundle` (the bytes as received,
/// served to whoever asks for them) and `<root>/<hash>/` (unpacked, where the
/// app's library is loaded from). A bundle appears in the store only whole:
/// it is unpacked into a temporary directory and renamed into place.
class bundle_store {
 public:
  explicit bundle_store(std::filesystem::path root, bundle_limits limits = {})
      : root_(std::move(root)), limits_(limits) {}

  const std::filesystem::path& root() const { return root_; }

  /// True when the bundle is stored (both its bytes and its directory).
  bool has(const std::string& hash) const;

  /// Where the bundle's files are.
  std::filesystem::path dir(const std::string& hash) const { return root_ / hash; }

  /// Checks `bytes` against `hash`, writes them and unpacks them. Returns
  /// the bundle's directory. Storing a bundle already there is a no-op.
  expected<std::filesystem::path> put(const std::string& hash, const buffer& bytes);

  /// Checks a stored bundle again before its library is loaded: its bytes
  /// against the hash, and every unpacked file against the bundle's entry
  /// (none changed, none added). Fails naming what differs.
  expected<void> check(const std::string& hash) const;

  /// Removes a stored bundle (its bytes and its directory).
  expected<void> remove(const std::string& hash);

  /// The stored bytes, read back as they are on disk (not checked again:
  /// whoever receives them checks them against the hash they asked for).
  expected<buffer> read(const std::string& hash) const;

 private:
  std::filesystem::path root_;
  bundle_limits limits_;
};

}  // namespace stamen
