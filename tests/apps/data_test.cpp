#include <zlib.h>

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "apps/data/loaders.hpp"
#include "apps/data/partitioner.hpp"

using namespace stamen;
using namespace stamen::data;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  temp_dir() {
    path = fs::temp_directory_path() / ("stamen-data-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(counter++));
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
  fs::path path;
  static inline int counter = 0;
};

void be32(std::vector<uint8_t>& out, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(x >> s));
}

void write(const fs::path& p, const std::vector<uint8_t>& bytes, bool gz) {
  if (gz) {
    gzFile f = gzopen(p.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                             static_cast<std::streamsize>(bytes.size()));
  }
}

// n images of h x w where pixel (i, j) of image k is k + j, label k % 10.
void write_idx(const fs::path& dir, const std::string& prefix, uint32_t n, bool gz,
               uint32_t image_magic = 0x803) {
  std::vector<uint8_t> img, lab;
  be32(img, image_magic);
  be32(img, n);
  be32(img, 4);
  be32(img, 3);
  for (uint32_t k = 0; k < n; ++k)
    for (uint32_t j = 0; j < 12; ++j) img.push_back(static_cast<uint8_t>(k + j));
  be32(lab, 0x801);
  be32(lab, n);
  for (uint32_t k = 0; k < n; ++k) lab.push_back(static_cast<uint8_t>(k % 10));
  auto ext = gz ? ".gz" : "";
  write(dir / (prefix + "-images-idx3-ubyte" + ext), img, gz);
  write(dir / (prefix + "-labels-idx1-ubyte" + ext), lab, gz);
}

std::vector<uint8_t> cifar_records(uint32_t n, uint8_t first_label) {
  std::vector<uint8_t> out;
  for (uint32_t k = 0; k < n; ++k) {
    out.push_back(static_cast<uint8_t>((first_label + k) % 10));
    for (int i = 0; i < 3072; ++i) out.push_back(static_cast<uint8_t>(i / 1024 * 100 + k));
  }
  return out;
}

std::vector<uint8_t> labels_of(size_t n, size_t classes) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>((i * 7 + i / 3) % classes);
  return out;
}

void check_disjoint_cover(const std::vector<index_list>& parts, size_t n, bool full) {
  std::set<uint32_t> seen;
  size_t total = 0;
  for (auto& p : parts) {
    total += p.size();
    seen.insert(p.begin(), p.end());
  }
  BOOST_TEST(seen.size() == total);  // disjoint
  if (full) BOOST_TEST(total == n);  // coverage
  for (auto i : seen) BOOST_TEST(i < n);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(loaders_suite)

BOOST_AUTO_TEST_CASE(idx_plain_and_gzipped) {
  for (bool gz : {false, true}) {
    temp_dir d;
    write_idx(d.path, "train", 25, gz);
    auto ds = load_mnist_dir(d.path);
    BOOST_REQUIRE_MESSAGE(ds.has_value(), (ds ? std::string{} : ds.error().what));
    BOOST_TEST(ds->count == 25u);
    BOOST_TEST(ds->height == 4u);
    BOOST_TEST(ds->width == 3u);
    BOOST_TEST(ds->image(7)[2] == 9);
    BOOST_TEST(ds->labels[13] == 3);
  }
}

BOOST_AUTO_TEST_CASE(idx_errors_name_the_file) {
  temp_dir d;
  auto missing = load_mnist_dir(d.path / "nope");
  BOOST_REQUIRE(!missing);
  BOOST_TEST(missing.error().what.find("does not exist") != std::string::npos);

  write_idx(d.path, "train", 5, false, 0x804);
  auto magic = load_mnist_dir(d.path);
  BOOST_REQUIRE(!magic);
  BOOST_TEST(magic.error().what.find("magic number 2052, expected 2051") != std::string::npos,
             magic.error().what);

  write_idx(d.path, "train", 5, false);
  auto img = d.path / "train-images-idx3-ubyte";
  fs::resize_file(img, fs::file_size(img) - 5);
  auto truncated = load_mnist_dir(d.path);
  BOOST_REQUIRE(!truncated);
  BOOST_TEST(truncated.error().what.find("truncated") != std::string::npos, truncated.error().what);
  BOOST_TEST(truncated.error().what.find("train-images-idx3-ubyte") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(cifar10_binary_batches) {
  temp_dir d;
  write(d.path / "data_batch_1.bin", cifar_records(4, 0), false);
  write(d.path / "data_batch_2.bin", cifar_records(3, 5), false);
  write(d.path / "test_batch.bin", cifar_records(2, 9), false);
  auto train = load_cifar10_dir(d.path);
  BOOST_REQUIRE_MESSAGE(train.has_value(), (train ? std::string{} : train.error().what));
  BOOST_TEST(train->count == 7u);
  BOOST_TEST(train->channels == 3u);
  BOOST_TEST(train->labels[4] == 5);
  BOOST_TEST(train->image(1)[0] == 1);        // red plane of image 1
  BOOST_TEST(train->image(1)[1024] == 101);   // green plane
  BOOST_TEST(train->image(1)[2048] == 201);   // blue plane
  auto test = load_cifar10_dir(d.path, false);
  BOOST_REQUIRE(test.has_value());
  BOOST_TEST(test->count == 2u);
  BOOST_TEST(test->labels[1] == 0);

  auto recs = cifar_records(2, 0);
  recs.pop_back();
  write(d.path / "data_batch_3.bin", recs, false);
  auto bad = load_cifar10_dir(d.path);
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.error().what.find("data_batch_3.bin' is truncated") != std::string::npos,
             bad.error().what);
  auto bad_label = cifar_records(1, 0);
  bad_label[0] = 12;
  write(d.path / "data_batch_3.bin", bad_label, false);
  BOOST_TEST(load_cifar10_dir(d.path).error().what.find("label 12") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(partitioner_suite)

BOOST_AUTO_TEST_CASE(iid_sizes_disjoint_cover_deterministic) {
  auto labels = labels_of(1003, 10);
  partition_options o;
  o.num_partitions = 10;
  auto a = make_partitions(labels, 10, o);
  BOOST_REQUIRE(a.has_value());
  check_disjoint_cover(*a, labels.size(), true);
  for (auto& p : *a) BOOST_TEST((p.size() == 100u || p.size() == 101u));
  BOOST_TEST((*a == *make_partitions(labels, 10, o)));
  o.seed = 43;
  BOOST_TEST((*a != *make_partitions(labels, 10, o)));
}

BOOST_AUTO_TEST_CASE(dirichlet_skews_labels) {
  auto labels = labels_of(5000, 10);
  partition_options o;
  o.kind = "dirichlet";
  o.num_partitions = 10;
  o.alpha = 0.1;
  o.min_partition_size = 20;
  auto parts = make_partitions(labels, 10, o);
  BOOST_REQUIRE_MESSAGE(parts.has_value(), (parts ? std::string{} : parts.error().what));
  check_disjoint_cover(*parts, labels.size(), true);
  // With alpha = 0.1 most partitions are dominated by few classes.
  size_t skewed = 0;
  for (auto& p : *parts) {
    BOOST_TEST(p.size() >= 20u);
    std::vector<size_t> count(10, 0);
    for (auto i : p) ++count[labels[i]];
    if (*std::max_element(count.begin(), count.end()) * 2 > p.size()) ++skewed;
  }
  BOOST_TEST(skewed >= 5u);
  BOOST_TEST((*parts == *make_partitions(labels, 10, o)));
  o.min_partition_size = 4000;
  auto impossible = make_partitions(labels, 10, o);
  BOOST_REQUIRE(!impossible);
  BOOST_TEST(impossible.error().what.find("min-partition-size") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(pathological_gives_k_classes) {
  auto labels = labels_of(2000, 10);
  partition_options o;
  o.kind = "pathological";
  o.num_partitions = 10;
  o.classes_per_partition = 2;
  auto parts = make_partitions(labels, 10, o);
  BOOST_REQUIRE(parts.has_value());
  check_disjoint_cover(*parts, labels.size(), true);
  for (auto& p : *parts) {
    std::set<uint8_t> classes;
    for (auto i : p) classes.insert(labels[i]);
    BOOST_TEST(classes.size() == 2u);
  }
  BOOST_TEST((*parts == *make_partitions(labels, 10, o)));
}

BOOST_AUTO_TEST_CASE(shard_partitions) {
  auto labels = labels_of(1000, 10);
  partition_options o;
  o.kind = "shard";
  o.num_partitions = 5;
  o.shards_per_partition = 2;
  auto parts = make_partitions(labels, 10, o);
  BOOST_REQUIRE(parts.has_value());
  check_disjoint_cover(*parts, labels.size(), true);
  for (auto& p : *parts) {
    BOOST_TEST(p.size() == 200u);
    std::set<uint8_t> classes;
    for (auto i : p) classes.insert(labels[i]);
    BOOST_TEST(classes.size() <= 4u);  // two shards of sorted labels
  }
  o.kind = "bogus";
  auto bad = make_partitions(labels, 10, o);
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.error().what.find("unknown partitioner 'bogus'") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(train_test_split_is_80_20_and_disjoint) {
  index_list idx(100);
  for (uint32_t i = 0; i < 100; ++i) idx[i] = i * 3;
  auto s = split_train_test(idx, 0.2, 7);
  BOOST_TEST(s.test.size() == 20u);
  BOOST_TEST(s.train.size() == 80u);
  check_disjoint_cover({s.train, s.test}, 300, false);
  auto again = split_train_test(idx, 0.2, 7);
  BOOST_TEST((again.train == s.train));
}

BOOST_AUTO_TEST_SUITE_END()
