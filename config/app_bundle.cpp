#include "config/app_bundle.hpp"

#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <fstream>
#include <random>
#include <vector>

namespace stamen {

namespace fs = std::filesystem;

namespace {

// The bundle's layout: magic, the unpacked size, then zlib's stream of the
// entries (count, then per entry: path, executable flag, size, bytes; sizes
// little-endian u64). The unpacked size comes first so that a receiver
// knows what it is asked to allocate before it inflates anything.
constexpr char magic[8] = {'S', 'T', 'M', 'N', 'A', 'P', 'P', '1'};
constexpr size_t head_size = sizeof magic + 8;
constexpr size_t max_path = 4096;

struct entry {
  std::string path;  ///< relative, '/'-separated
  bool executable = false;
  fs::path source;
};

void put_u64(std::vector<std::byte>& out, uint64_t x) {
  auto* p = reinterpret_cast<const std::byte*>(&x);
  out.insert(out.end(), p, p + 8);
}

expected<std::vector<std::byte>> read_whole(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail(errc::io_error, "cannot read '" + file.string() + "'");
  in.seekg(0, std::ios::end);
  auto size = static_cast<size_t>(in.tellg());
  in.seekg(0);
  std::vector<std::byte> out(size);
  if (size > 0 && !in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(size)))
    return fail(errc::io_error, "cannot read '" + file.string() + "'");
  return out;
}

expected<void> write_whole(const fs::path& file, const std::byte* data, size_t size) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (out) out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) return fail(errc::io_error, "cannot write '" + file.string() + "'");
  return {};
}

}  // namespace

// What passes names a file inside the directory it is written into.
expected<void> check_relative_path(const std::string& p, const std::string& what) {
  auto bad = [&](const std::string& why) {
    return fail(errc::invalid_argument, what + " '" + p + "' " + why);
  };
  if (p.empty()) return bad("has an empty path");
  if (p.size() > max_path) return bad("has a path over " + std::to_string(max_path) + " bytes");
  if (p.front() == '/') return bad("is an absolute path");
  if (p.find('\0') != std::string::npos) return bad("has a NUL byte in its path");
  size_t start = 0;
  while (start <= p.size()) {
    auto end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    auto part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..")
      return bad("has a '" + part + "' component (it would leave its directory)");
    start = end + 1;
  }
  return {};
}

namespace {

expected<void> check_entry_path(const std::string& p) { return check_relative_path(p); }

// Adds `rel` (a file, or a directory and everything under it) to `out`.
expected<void> collect(const fs::path& app_dir, const std::string& rel, std::vector<entry>& out) {
  if (auto ok = check_entry_path(rel); !ok)
    return fail(errc::config_error, "stamen.toml [app] files: '" + rel +
                                        "' must be a relative path inside the app's directory");
  auto full = app_dir / rel;
  std::error_code ec;
  auto add_file = [&](const fs::path& f, const std::string& name) {
    auto perms = fs::status(f, ec).permissions();
    out.push_back({name, (perms & fs::perms::owner_exec) != fs::perms::none, f});
  };
  if (fs::is_regular_file(full, ec)) {
    add_file(full, rel);
    return {};
  }
  if (!fs::is_directory(full, ec))
    return fail(errc::config_error, "stamen.toml [app] files: '" + rel + "' does not exist in " +
                                        app_dir.string());
  for (auto it = fs::recursive_directory_iterator(full, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    add_file(it->path(), rel + "/" + fs::relative(it->path(), full).generic_string());
  }
  if (ec) return fail(errc::io_error, "cannot list '" + full.string() + "': " + ec.message());
  return {};
}

struct cursor {
  const std::byte* p;
  size_t left;
  expected<uint64_t> u64(const char* what) {
    if (left < 8) return fail(errc::decode_failed, std::string{"bundle ends inside "} + what);
    uint64_t x;
    std::memcpy(&x, p, 8);
    p += 8;
    left -= 8;
    return x;
  }
};

}  // namespace

std::string sha256_hex(const std::byte* data, size_t size) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data, size, md, &n, EVP_sha256(), nullptr);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

bool is_bundle_hash(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

expected<app_bundle> pack_app_bundle(const app_config& cfg, const fs::path& library_file) {
  std::vector<entry> entries;
  entries.push_back({app_config_file, false, cfg.dir / app_config_file});
  entries.push_back({"lib" + cfg.library + ".so", true, library_file});
  for (auto& f : cfg.files)
    if (auto ok = collect(cfg.dir, f, entries); !ok) return ok.error();
  std::sort(entries.begin(), entries.end(), [](auto& a, auto& b) { return a.path < b.path; });
  for (size_t i = 1; i < entries.size(); ++i)
    if (entries[i].path == entries[i - 1].path)
      return fail(errc::config_error, "stamen.toml [app] files: '" + entries[i].path +
                                          "' is in the bundle twice");
  std::vector<std::byte> raw;
  put_u64(raw, entries.size());
  for (auto& e : entries) {
    auto bytes = read_whole(e.source);
    if (!bytes) return bytes.error();
    put_u64(raw, e.path.size());
    auto* p = reinterpret_cast<const std::byte*>(e.path.data());
    raw.insert(raw.end(), p, p + e.path.size());
    raw.push_back(std::byte{static_cast<unsigned char>(e.executable ? 1 : 0)});
    put_u64(raw, bytes->size());
    raw.insert(raw.end(), bytes->begin(), bytes->end());
  }
  // Level 1: a library with debug information shrinks to a third at a
  // fraction of the time level 6 takes, and packing sits before every run.
  uLongf packed = compressBound(raw.size());
  auto [buf, fill] = buffer::allocate(head_size + packed);
  std::memcpy(fill, magic, sizeof magic);
  uint64_t raw_size = raw.size();
  std::memcpy(fill + sizeof magic, &raw_size, 8);
  if (compress2(reinterpret_cast<Bytef*>(fill + head_size), &packed,
                reinterpret_cast<const Bytef*>(raw.data()), raw.size(), 1) != Z_OK)
    return fail(errc::runtime_error, "cannot compress the app bundle");
  auto bytes = buf.slice(0, head_size + packed);
  return app_bundle{sha256_hex(bytes.data(), bytes.size()), bytes};
}

expected<void> verify_bundle(const std::string& hash, const buffer& bytes) {
  auto got = sha256_hex(bytes.data(), bytes.size());
  if (got != hash)
    return fail(errc::invalid_argument, "bundle " + short_hash(hash) + "... refused: its " +
                                            std::to_string(bytes.size()) + " bytes hash to " +
                                            short_hash(got) +
                                            "..., not to the hash it was announced with "
                                            "(tampered with or corrupted on the way)");
  return {};
}

// Inflates a bundle's stream that says it holds `size` bytes. Memory grows
// with what the stream really yields (never to `size` on a header's word
// alone, so 16 forged bytes claiming 4 GiB allocate next to nothing), and a
// stream that yields more or less than `size` is refused.
expected<std::vector<std::byte>> inflate_bounded(const std::byte* in, size_t n, uint64_t size) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return fail(errc::runtime_error, "zlib cannot start inflating");
  std::vector<std::byte> out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in));
  z.avail_in = static_cast<uInt>(std::min<size_t>(n, std::numeric_limits<uInt>::max()));
  size_t fed = z.avail_in;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (out.size() == z.total_out) {
      if (out.size() > size) break;  // more than it said: refused below
      out.resize(std::min<uint64_t>(std::max<size_t>(out.size() * 2, size_t{64} << 10), size + 1));
    }
    z.next_out = reinterpret_cast<Bytef*>(out.data()) + z.total_out;
    z.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - z.total_out, std::numeric_limits<uInt>::max()));
    if (z.avail_in == 0 && fed < n) {
      z.avail_in = static_cast<uInt>(std::min<size_t>(n - fed, std::numeric_limits<uInt>::max()));
      fed += z.avail_in;
    }
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR && z.avail_in == 0 && fed == n) break;  // the stream ended early
    if (rc == Z_BUF_ERROR) rc = Z_OK;  // no room this time: grown above
  }
  bool whole = rc == Z_STREAM_END && z.total_out == size && z.avail_in == 0 && fed == n;
  inflateEnd(&z);
  if (!whole)
    return fail(errc::decode_failed, "bundle's compressed stream is corrupt or not " +
                                         std::to_string(size) + " bytes long");
  out.resize(size);
  return out;
}

namespace {

// Walks a bundle's entries, checking each as unpack_bundle documents, and
// calls `fn(path, executable, bytes, size)` for each.
template <class F>
expected<void> for_each_entry(const buffer& bytes, const bundle_limits& limits, F&& fn) {
  if (bytes.size() < head_size || std::memcmp(bytes.data(), magic, sizeof magic) != 0)
    return fail(errc::decode_failed, "not a Stamen app bundle (bad magic bytes)");
  uint64_t raw_size;
  std::memcpy(&raw_size, bytes.data() + sizeof magic, 8);
  if (raw_size > limits.max_unpacked_bytes)
    return fail(errc::message_too_large, "bundle unpacks to " + std::to_string(raw_size) +
                                             " bytes, over the limit of " +
                                             std::to_string(limits.max_unpacked_bytes));
  auto raw = inflate_bounded(bytes.data() + head_size, bytes.size() - head_size, raw_size);
  if (!raw) return raw.error();
  cursor c{raw->data(), raw->size()};
  auto count = c.u64("the entry count");
  if (!count) return count.error();
  if (*count > limits.max_entries)
    return fail(errc::message_too_large, "bundle has " + std::to_string(*count) +
                                             " entries, over the limit of " +
                                             std::to_string(limits.max_entries));
  for (uint64_t i = 0; i < *count; ++i) {
    auto n = c.u64("an entry's path length");
    if (!n) return n.error();
    if (*n > max_path || *n + 9 > c.left)
      return fail(errc::decode_failed, "bundle entry " + std::to_string(i) + " has a bad path length");
    std::string path(reinterpret_cast<const char*>(c.p), *n);
    c.p += *n;
    c.left -= *n;
    if (auto ok = check_entry_path(path); !ok) return ok.error();
    bool executable = *c.p != std::byte{0};
    c.p += 1;
    c.left -= 1;
    auto size = c.u64("an entry's size");
    if (!size) return size.error();
    if (*size > c.left)
      return fail(errc::decode_failed, "bundle entry '" + path + "' claims " + std::to_string(*size) +
                                           " bytes; " + std::to_string(c.left) + " are left");
    if (auto ok = fn(path, executable, c.p, static_cast<size_t>(*size)); !ok) return ok.error();
    c.p += *size;
    c.left -= *size;
  }
  if (c.left != 0)
    return fail(errc::decode_failed, "bundle has " + std::to_string(c.left) + " bytes after its last entry");
  return {};
}

}  // namespace

expected<void> unpack_bundle(const buffer& bytes, const fs::path& dir, const bundle_limits& limits) {
  return for_each_entry(bytes, limits, [&](const std::string& path, bool executable, const std::byte* data,
                                           size_t size) -> expected<void> {
    auto target = dir / path;
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) return fail(errc::io_error, "cannot create '" + target.parent_path().string() + "': " + ec.message());
    if (fs::exists(target, ec))
      return fail(errc::decode_failed, "bundle entry '" + path + "' appears twice");
    if (auto ok = write_whole(target, data, size); !ok) return ok.error();
    if (executable)
      fs::permissions(target, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                      fs::perm_options::add, ec);
    return {};
  });
}

bool bundle_store::has(const std::string& hash) const {
  if (!is_bundle_hash(hash)) return false;
  std::error_code ec;
  return fs::is_directory(dir(hash), ec) && fs::is_regular_file(root_ / (hash + ".bundle"), ec);
}

expected<fs::path> bundle_store::put(const std::string& hash, const buffer& bytes) {
  if (!is_bundle_hash(hash))
    return fail(errc::invalid_argument, "'" + hash.substr(0, 80) + "' is not a bundle hash (64 hex digits)");
  if (has(hash)) return dir(hash);
  if (auto ok = verify_bundle(hash, bytes); !ok) return ok.error();
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) return fail(errc::io_error, "cannot create bundle store '" + root_.string() + "': " + ec.message());
  // A temporary name of its own, so that two processes sharing a cache (or
  // a crash half way) never leave a partial bundle under its hash.
  auto tmp = root_ / (hash + ".partial-" + std::to_string(std::random_device{}()));
  fs::create_directories(tmp, ec);
  if (ec) return fail(errc::io_error, "cannot create '" + tmp.string() + "': " + ec.message());
  auto ok = unpack_bundle(bytes, tmp, limits_);
  if (ok) ok = write_whole(tmp.string() + ".bundle", bytes.data(), bytes.size());
  if (ok) {
    fs::rename(tmp.string() + ".bundle", root_ / (hash + ".bundle"), ec);
    if (!ec) fs::rename(tmp, dir(hash), ec);
    // Lost a race with another writer of the same bundle: theirs is as good.
    if (ec && has(hash)) ec.clear();
    if (ec) ok = fail(errc::io_error, "cannot move bundle into '" + dir(hash).string() + "': " + ec.message());
  }
  std::error_code ignore;
  fs::remove_all(tmp, ignore);
  fs::remove(tmp.string() + ".bundle", ignore);
  if (!ok) return ok.error();
  return dir(hash);
}

expected<void> bundle_store::check(const std::string& hash) const {
  auto bytes = read(hash);
  if (!bytes) return bytes.error();
  if (auto ok = verify_bundle(hash, *bytes); !ok)
    return fail(errc::invalid_argument, "the cached " + ok.error().what);
  // Every unpacked file must be the bundle's own, byte for byte, and none
  // added: the library loaded from here is what the hash names.
  size_t entries = 0;
  auto same = for_each_entry(*bytes, limits_, [&](const std::string& path, bool, const std::byte* data,
                                                  size_t size) -> expected<void> {
    ++entries;
    auto on_disk = read_whole(dir(hash) / path);
    if (!on_disk || on_disk->size() != size || (size > 0 && std::memcmp(on_disk->data(), data, size) != 0))
      return fail(errc::invalid_argument, "cached bundle " + short_hash(hash) + "...'s file '" + path +
                                              "' is not the bundle's (changed or removed since it was unpacked)");
    return {};
  });
  if (!same) return same.error();
  size_t files = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir(hash), ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (!it->is_directory(ec)) ++files;
  if (ec) return fail(errc::io_error, "cannot list cached bundle " + short_hash(hash) + "...: " + ec.message());
  if (files != entries)
    return fail(errc::invalid_argument, "cached bundle " + short_hash(hash) + "... holds " + std::to_string(files) +
                                            " files where the bundle has " + std::to_string(entries));
  return {};
}

expected<void> bundle_store::remove(const std::string& hash) {
  if (!is_bundle_hash(hash)) return fail(errc::invalid_argument, "not a bundle hash");
  std::error_code ec;
  fs::remove(root_ / (hash + ".bundle"), ec);
  if (!ec) fs::remove_all(dir(hash), ec);
  if (ec) return fail(errc::io_error, "cannot remove cached bundle " + short_hash(hash) + "...: " + ec.message());
  return {};
}

expected<buffer> bundle_store::read(const std::string& hash) const {
  if (!is_bundle_hash(hash)) return fail(errc::invalid_argument, "not a bundle hash");
  auto bytes = read_whole(root_ / (hash + ".bundle"));
  if (!bytes) return fail(errc::io_error, "bundle " + short_hash(hash) + "... is not stored here");
  return buffer::copy_of(bytes->data(), bytes->size());
}

}  // namespace stamen
