// App bundles on their own: what goes in, that the hash names the bytes,
// and that bytes from another host cannot write outside their directory.
#include <boost/test/unit_test.hpp>
#include <zlib.h>

#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "config/app_bundle.hpp"

namespace fs = std::filesystem;
using namespace stamen;

namespace {

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream{p, std::ios::binary} << text;
}

std::string read(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct app_dir_fixture {
  fs::path root;
  app_config cfg;

  app_dir_fixture() {
    auto name = boost::unit_test::framework::current_test_case().p_name.get();
    root = fs::temp_directory_path() / ("stamen-bundle-" + std::to_string(getpid())) / name;
    fs::remove_all(root);
    write(root / "app" / "stamen.toml", "[app]\nname = \"demo\"\nlibrary = \"demo\"\n");
    write(root / "app" / "build" / "libdemo.so", std::string(100000, 'L'));
    write(root / "app" / "labels.txt", "cat\ndog\n");
    write(root / "app" / "weights" / "a.bin", std::string(5000, '\1'));
    write(root / "app" / "weights" / "sub" / "b.bin", "b");
    cfg.dir = root / "app";
    cfg.name = "demo";
    cfg.library = "demo";
    cfg.files = {"labels.txt", "weights"};
  }
  ~app_dir_fixture() { fs::remove_all(root); }

  fs::path library() const { return root / "app" / "build" / "libdemo.so"; }
};

// A bundle in the wire format with entries written by hand, for the
// malformed ones no honest packer writes.
buffer handmade(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string raw;
  auto u64 = [&](uint64_t x) { raw.append(reinterpret_cast<const char*>(&x), 8); };
  u64(entries.size());
  for (auto& [path, bytes] : entries) {
    u64(path.size());
    raw += path;
    raw += '\0';
    u64(bytes.size());
    raw += bytes;
  }
  uLongf n = compressBound(raw.size());
  std::string out = "STMNAPP1";
  uint64_t size = raw.size();
  out.append(reinterpret_cast<const char*>(&size), 8);
  std::string packed(n, '\0');
  compress2(reinterpret_cast<Bytef*>(packed.data()), &n, reinterpret_cast<const Bytef*>(raw.data()),
            raw.size(), 1);
  out += packed.substr(0, n);
  return buffer::copy_of(out.data(), out.size());
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(app_bundle_suite, app_dir_fixture)

BOOST_AUTO_TEST_CASE(a_bundle_holds_the_toml_the_library_and_the_declared_files) {
  auto b = pack_app_bundle(cfg, library());
  BOOST_REQUIRE_MESSAGE(b.has_value(), (b ? std::string{} : b.error().what));
  BOOST_TEST(is_bundle_hash(b->hash));
  BOOST_TEST(b->hash == sha256_hex(b->bytes.data(), b->bytes.size()));
  BOOST_TEST(b->bytes.size() < 100000u);  // compressed
  auto out = root / "out";
  fs::create_directories(out);
  auto ok = unpack_bundle(b->bytes, out);
  BOOST_REQUIRE_MESSAGE(ok.has_value(), (ok ? std::string{} : ok.error().what));
  BOOST_TEST(read(out / "stamen.toml") == read(cfg.dir / "stamen.toml"));
  BOOST_TEST(read(out / "libdemo.so") == read(library()));
  BOOST_TEST(read(out / "labels.txt") == "cat\ndog\n");
  BOOST_TEST(read(out / "weights" / "a.bin") == std::string(5000, '\1'));
  BOOST_TEST(read(out / "weights" / "sub" / "b.bin") == "b");
  // The same files pack to the same hash (entries are sorted).
  auto again = pack_app_bundle(cfg, library());
  BOOST_TEST(again->hash == b->hash);
  write(root / "app" / "labels.txt", "cat\ndog\nbird\n");
  BOOST_TEST(pack_app_bundle(cfg, library())->hash != b->hash);
}

BOOST_AUTO_TEST_CASE(a_declared_file_that_is_missing_or_outside_the_app_is_an_error) {
  cfg.files = {"nope.txt"};
  auto b = pack_app_bundle(cfg, library());
  BOOST_REQUIRE(!b);
  BOOST_TEST(b.error().what.find("'nope.txt' does not exist") != std::string::npos, b.error().what);
  cfg.files = {"../secrets"};
  b = pack_app_bundle(cfg, library());
  BOOST_REQUIRE(!b);
  BOOST_TEST(b.error().what.find("must be a relative path inside the app's directory") != std::string::npos,
             b.error().what);
  cfg.files = {"/etc/passwd"};
  BOOST_TEST(!static_cast<bool>(pack_app_bundle(cfg, library())));
}

BOOST_AUTO_TEST_CASE(one_changed_byte_fails_the_hash_and_names_both) {
  auto b = pack_app_bundle(cfg, library());
  BOOST_REQUIRE(b);
  BOOST_TEST(static_cast<bool>(verify_bundle(b->hash, b->bytes)));
  std::string bytes(reinterpret_cast<const char*>(b->bytes.data()), b->bytes.size());
  bytes[bytes.size() / 2] ^= 1;
  auto bad = verify_bundle(b->hash, buffer::copy_of(bytes.data(), bytes.size()));
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.error().what.find(short_hash(b->hash)) != std::string::npos, bad.error().what);
  BOOST_TEST(bad.error().what.find("tampered with or corrupted") != std::string::npos);
  // A store refuses it too, and keeps nothing of it.
  bundle_store store{root / "store"};
  auto put = store.put(b->hash, buffer::copy_of(bytes.data(), bytes.size()));
  BOOST_TEST(!static_cast<bool>(put));
  BOOST_TEST(!store.has(b->hash));
  BOOST_TEST((!fs::exists(root / "store") || fs::is_empty(root / "store")));
}

BOOST_AUTO_TEST_CASE(a_store_keeps_a_bundle_by_hash_and_serves_its_bytes) {
  auto b = pack_app_bundle(cfg, library());
  bundle_store store{root / "store"};
  BOOST_TEST(!store.has(b->hash));
  auto dir = store.put(b->hash, b->bytes);
  BOOST_REQUIRE_MESSAGE(dir.has_value(), (dir ? std::string{} : dir.error().what));
  BOOST_TEST(*dir == store.dir(b->hash));
  BOOST_TEST(store.has(b->hash));
  BOOST_TEST(fs::exists(*dir / "libdemo.so"));
  auto back = store.read(b->hash);
  BOOST_REQUIRE(back);
  BOOST_TEST((*back == b->bytes));
  BOOST_TEST(static_cast<bool>(store.put(b->hash, b->bytes)));  // again: a no-op
  // Another process's store on the same directory sees it.
  BOOST_TEST(bundle_store{root / "store"}.has(b->hash));
  // A name that is not a hash never becomes a path.
  BOOST_TEST(!static_cast<bool>(store.put("../../etc", b->bytes)));
  BOOST_TEST(!store.has("../../etc"));
  BOOST_TEST(!static_cast<bool>(store.read("../x")));
}

BOOST_AUTO_TEST_CASE(a_stored_bundle_is_checked_again_file_by_file_before_it_is_loaded) {
  auto b = pack_app_bundle(cfg, library());
  bundle_store store{root / "store"};
  BOOST_REQUIRE(store.put(b->hash, b->bytes));
  BOOST_TEST(static_cast<bool>(store.check(b->hash)));
  auto lib = store.dir(b->hash) / "libdemo.so";
  // A library changed since it was unpacked.
  { std::ofstream{lib, std::ios::app} << "x"; }
  auto changed = store.check(b->hash);
  BOOST_REQUIRE(!changed);
  BOOST_TEST(changed.error().what.find("'libdemo.so' is not the bundle's") != std::string::npos,
             changed.error().what);
  BOOST_REQUIRE(store.remove(b->hash));
  BOOST_TEST(!store.has(b->hash));
  BOOST_REQUIRE(store.put(b->hash, b->bytes));
  BOOST_TEST(static_cast<bool>(store.check(b->hash)));
  // A file added beside the bundle's.
  { std::ofstream{store.dir(b->hash) / "libextra.so"} << "x"; }
  auto added = store.check(b->hash);
  BOOST_REQUIRE(!added);
  BOOST_TEST(added.error().what.find("files where the bundle has") != std::string::npos, added.error().what);
  fs::remove(store.dir(b->hash) / "libextra.so");
  // The stored bytes themselves changed.
  auto stored = store.root() / (b->hash + ".bundle");
  { std::ofstream{stored, std::ios::app} << "x"; }
  auto bytes = store.check(b->hash);
  BOOST_REQUIRE(!bytes);
  BOOST_TEST(bytes.error().what.find("the cached bundle") != std::string::npos, bytes.error().what);
}

BOOST_AUTO_TEST_CASE(entries_that_would_leave_the_directory_are_refused) {
  for (std::string path : {"../escape", "a/../../escape", "/etc/escape", "a//b", "./x", ""}) {
    auto out = root / "out";
    fs::remove_all(out);
    fs::create_directories(out);
    auto ok = unpack_bundle(handmade({{"fine.txt", "ok"}, {path, "evil"}}), out);
    BOOST_TEST(!static_cast<bool>(ok), path);
    if (!ok) BOOST_TEST(ok.error().what.find("bundle entry") != std::string::npos, ok.error().what);
    BOOST_TEST(!fs::exists(root / "escape"));
  }
}

BOOST_AUTO_TEST_CASE(malformed_and_oversized_bundles_are_refused_with_the_reason) {
  auto out = root / "out";
  fs::create_directories(out);
  auto text = [](const std::string& s) { return buffer::copy_of(s.data(), s.size()); };
  auto why = [&](const buffer& b, const bundle_limits& l = {}) {
    auto ok = unpack_bundle(b, out, l);
    return ok ? std::string{} : ok.error().what;
  };
  BOOST_TEST(why(text("GET / HTTP/1.1\r\n\r\n")).find("bad magic bytes") != std::string::npos);
  BOOST_TEST(why(text(std::string("STMNAPP1\x08\0\0\0\0\0\0\0garbage!", 24))).find("corrupt") !=
             std::string::npos);
  auto two = handmade({{"a", "1"}, {"b", "2"}});
  bundle_limits one_entry;
  one_entry.max_entries = 1;
  BOOST_TEST(why(two, one_entry).find("over the limit of 1") != std::string::npos);
  bundle_limits tiny;
  tiny.max_unpacked_bytes = 10;
  BOOST_TEST(why(two, tiny).find("unpacks to") != std::string::npos);
  BOOST_TEST(why(handmade({{"a", "1"}, {"a", "2"}})).find("appears twice") != std::string::npos);
}

// A 16-byte header may claim up to the limit (4 GiB by default); what is
// allocated follows the bytes that really inflate. (Unpacking used to
// allocate and zero the claimed size first: 4 GiB of RSS for 40 bytes.)
BOOST_AUTO_TEST_CASE(a_claimed_size_allocates_nothing_before_the_stream_yields_it) {
  auto out = root / "out";
  fs::create_directories(out);
  auto forged = [](uint64_t claim, const std::string& stream) {
    std::string b = "STMNAPP1";
    b.append(reinterpret_cast<const char*>(&claim), 8);
    b += stream;
    return buffer::copy_of(b.data(), b.size());
  };
  auto honest = handmade({{"a", std::string(300000, 'x')}});
  std::string stream(reinterpret_cast<const char*>(honest.data()) + 16, honest.size() - 16);
  uint64_t real_size = 0;
  std::memcpy(&real_size, honest.data() + 8, 8);
  auto rss_kb = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
  };
  auto before = rss_kb();
  for (uint64_t claim : {(uint64_t{4} << 30) - 1, real_size + 1, real_size - 1}) {
    auto ok = unpack_bundle(forged(claim, stream), out);
    BOOST_REQUIRE(!ok);
    BOOST_TEST(ok.error().what.find("corrupt or not " + std::to_string(claim) + " bytes long") !=
               std::string::npos, ok.error().what);
  }
  auto grown_mb = (rss_kb() - before) / 1024;
  BOOST_TEST(grown_mb < 64, "unpacking forged headers grew the peak RSS by " << grown_mb << " MB");
  BOOST_TEST(fs::is_empty(out));
  BOOST_TEST(!!unpack_bundle(forged(real_size, stream), out));
  BOOST_TEST(read(out / "a").size() == 300000u);
}

BOOST_AUTO_TEST_SUITE_END()
