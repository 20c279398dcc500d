#include "apps/data/loaders.hpp"

#include <zlib.h>

#include <cstring>
#include <fstream>
#include <memory>

namespace stamen::data {

namespace fs = std::filesystem;

namespace {

failure io(std::string what) { return failure{errc::io_error, std::move(what)}; }

// Reads a whole file; zlib's gzread also reads uncompressed files as they are.
expected<std::vector<uint8_t>> read_maybe_gzipped(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return io("'" + path.string() + "' does not exist");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> f{gzopen(path.c_str(), "rb"), gzclose};
  if (!f) return io("cannot open '" + path.string() + "'");
  std::vector<uint8_t> out;
  uint8_t chunk[1 << 16];
  for (;;) {
    int n = gzread(f.get(), chunk, sizeof chunk);
    if (n < 0) {
      int err = 0;
      return io("'" + path.string() + "' is corrupt: " + gzerror(f.get(), &err));
    }
    if (n == 0) break;
    out.insert(out.end(), chunk, chunk + n);
  }
  return out;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Finds `name` or `name.gz` in `dir`.
fs::path find_file(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  if (fs::is_regular_file(dir / name, ec)) return dir / name;
  return dir / (name + ".gz");
}

}  // namespace

expected<image_dataset> load_idx(const fs::path& images, const fs::path& labels) {
  auto img = read_maybe_gzipped(images);
  if (!img) return img.error();
  auto lab = read_maybe_gzipped(labels);
  if (!lab) return lab.error();
  auto& ib = *img;
  auto& lb = *lab;
  if (ib.size() < 16) return io("'" + images.string() + "' is truncated: no IDX header");
  if (be32(ib.data()) != 0x00000803)
    return io("'" + images.string() + "' has magic number " + std::to_string(be32(ib.data())) +
              ", expected 2051 (IDX unsigned-byte images of 3 dimensions)");
  if (lb.size() < 8) return io("'" + labels.string() + "' is truncated: no IDX header");
  if (be32(lb.data()) != 0x00000801)
    return io("'" + labels.string() + "' has magic number " + std::to_string(be32(lb.data())) +
              ", expected 2049 (IDX unsigned-byte labels)");
  image_dataset ds;
  ds.count = be32(ib.data() + 4);
  ds.height = be32(ib.data() + 8);
  ds.width = be32(ib.data() + 12);
  size_t want = 16 + ds.count * ds.height * ds.width;
  if (ds.height == 0 || ds.width == 0 || ds.height > 4096 || ds.width > 4096)
    return io("'" + images.string() + "' declares implausible image size " +
              std::to_string(ds.height) + "x" + std::to_string(ds.width));
  if (ib.size() < want)
    return io("'" + images.string() + "' is truncated: " + std::to_string(ds.count) + " images need " +
              std::to_string(want) + " bytes, the file has " + std::to_string(ib.size()));
  if (be32(lb.data() + 4) != ds.count)
    return io("'" + labels.string() + "' has " + std::to_string(be32(lb.data() + 4)) +
              " labels for " + std::to_string(ds.count) + " images");
  if (lb.size() < 8 + ds.count)
    return io("'" + labels.string() + "' is truncated");
  ds.pixels.assign(ib.begin() + 16, ib.begin() + static_cast<long>(want));
  ds.labels.assign(lb.begin() + 8, lb.begin() + 8 + static_cast<long>(ds.count));
  for (auto l : ds.labels)
    if (l >= ds.num_classes)
      return io("'" + labels.string() + "' has label " + std::to_string(l) + " outside 0..9");
  return ds;
}

expected<image_dataset> load_mnist_dir(const fs::path& dir, bool train) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return io("data directory '" + dir.string() + "' does not exist" +
              (dir == default_fashion_mnist_dir ? " (install Debian's dataset-fashion-mnist)" : ""));
  std::string prefix = train ? "train" : "t10k";
  return load_idx(find_file(dir, prefix + "-images-idx3-ubyte"),
                  find_file(dir, prefix + "-labels-idx1-ubyte"));
}

expected<image_dataset> load_cifar10_dir(const fs::path& dir, bool train) {
  constexpr size_t record = 1 + 3 * 32 * 32;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return io("data directory '" + dir.string() + "' does not exist");
  std::vector<fs::path> files;
  if (train) {
    for (int i = 1; i <= 5; ++i)
      if (fs::is_regular_file(dir / ("data_batch_" + std::to_string(i) + ".bin"), ec))
        files.push_back(dir / ("data_batch_" + std::to_string(i) + ".bin"));
    if (files.empty()) return io("'" + dir.string() + "' has no data_batch_*.bin");
  } else {
    files.push_back(dir / "test_batch.bin");
  }
  image_dataset ds;
  ds.channels = 3;
  ds.height = ds.width = 32;
  for (auto& f : files) {
    auto bytes = read_maybe_gzipped(f);
    if (!bytes) return bytes.error();
    if (bytes->empty() || bytes->size() % record != 0)
      return io("'" + f.string() + "' is truncated: " + std::to_string(bytes->size()) +
                " bytes is not a whole number of " + std::to_string(record) + "-byte records");
    size_t n = bytes->size() / record;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* r = bytes->data() + i * record;
      if (r[0] >= 10)
        return io("'" + f.string() + "' record " + std::to_string(i) + " has label " +
                  std::to_string(r[0]) + " outside 0..9");
      ds.labels.push_back(r[0]);
      ds.pixels.insert(ds.pixels.end(), r + 1, r + record);
    }
    ds.count += n;
  }
  return ds;
}

}  // namespace stamen::data
