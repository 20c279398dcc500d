#pragma once

#include <filesystem>
#include <string>

#include "apps/data/dataset.hpp"
#include "messages/expected.hpp"

namespace stamen::data {

/// Where Debian's dataset-fashion-mnist puts its files.
inline constexpr const char* default_fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

/// Reads an IDX image file and its label file (gzipped or not), as MNIST and
/// Fashion-MNIST ship them. Errors name the file and what is wrong with it.
expected<image_dataset> load_idx(const std::filesystem::path& images,
                                 const std::filesystem::path& labels);

/// Reads `<dir>/train-images-idx3-ubyte[.gz]` and its labels (or `t10k-*` for
/// the test split).
expected<image_dataset> load_mnist_dir(const std::filesystem::path& dir, bool train = true);

/// Reads CIFAR-10's binary batches: data_batch_1.bin .. data_batch_5.bin for
/// train (those present, at least one), test_batch.bin for test. Each record
/// is one label byte followed by 3072 pixel bytes (R, G, B planes of 32x32).
expected<image_dataset> load_cifar10_dir(const std::filesystem::path& dir, bool train = true);

}  // namespace stamen::data
