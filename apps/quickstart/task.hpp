#pragma once

// The quickstart's task: Net, data, train, test (Flower's task.py). This
// header is torch-free so that only task.cpp pays for <torch/torch.h>.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <utility>

#include "apps/data/dataset.hpp"
#include "apps/data/partitioner.hpp"
#include "messages/array_record.hpp"
#include "messages/config_record.hpp"
#include "messages/expected.hpp"

namespace quickstart {

using stamen::array_record;
using stamen::config_record;
using stamen::expected;

// Typed run-config reads: stamen::config_int, config_double, config_string.
using stamen::config_double;
using stamen::config_int;
using stamen::config_string;

/// Which data a run trains on and how it is split, from the run config.
struct data_spec {
  std::string dataset = "fashion-mnist";  ///< fashion-mnist | mnist | cifar10
  std::string data_dir;                   ///< empty: the dataset's default location
  stamen::data::partition_options partitioning;
  double test_fraction = 0.2;

  static data_spec from(const config_record& run_config);
};

/// Input shape of a data set: (channels, height, width).
struct image_shape {
  int64_t channels = 1, height = 28, width = 28;
};
image_shape shape_of(const std::string& dataset);

/// One node's share of the data: indices into a data set shared by all nodes.
struct node_data {
  std::shared_ptr<const stamen::data::image_dataset> dataset;
  stamen::data::index_list train;
  stamen::data::index_list test;
};

/// Reads and decodes a data set once per process and partitions it once per
/// (data set, partitioning); nodes get their own indices only.
class data_store {
 public:
  expected<node_data> partition(const data_spec& spec, size_t partition_id,
                                size_t num_partitions);

 private:
  std::mutex mtx_;
  std::map<std::string, std::shared_ptr<const stamen::data::image_dataset>> datasets_;
  std::map<std::string, std::shared_ptr<const std::vector<stamen::data::index_list>>> partitions_;
};

/// The tutorial's CNN on the best device (CUDA when available, else CPU).
class model {
 public:
  /// A Net with LibTorch's default initialization. With a seed, the initial
  /// weights are drawn from it (the same seed, the same weights); without,
  /// from whatever state torch's global generator is in.
  explicit model(image_shape shape, std::optional<uint64_t> seed = std::nullopt);
  ~model();
  model(const model&) = delete;
  model& operator=(const model&) = delete;

  /// The state dict as an ArrayRecord.
  array_record arrays() const;
  /// Loads an ArrayRecord (strict: same keys, dtypes and shapes).
  expected<void> load(const array_record& arrays);

  /// Adam + cross-entropy; returns the mean cross-entropy over all batches.
  /// With proximal_mu > 0 (FedProx) the loss minimized also holds
  /// (mu / 2) * ||w - w_received||², w_received being the weights at the call.
  double train(const node_data& data, int64_t epochs, double lr, int64_t batch_size,
               uint64_t seed, double proximal_mu = 0);
  /// Returns (mean loss over batches, accuracy) on the node's test split.
  std::pair<double, double> test(const node_data& data, int64_t batch_size);

  std::string device_name() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Writes arrays as a state dict that Python's torch.load reads
/// (torch::pickle_save of a dict of tensors).
expected<void> save_state_dict(const array_record& arrays, const std::string& path);
/// Reads a file written by save_state_dict (or by Python's torch.save of a
/// state dict of tensors) back into arrays.
expected<array_record> load_state_dict(const std::string& path);

/// Caps torch to one intra-op thread on the calling thread: trainings run in
/// parallel on separate compute threads instead.
void use_one_thread();

/// Sets torch's intra-op threads (for baselines that train one at a time).
void torch_threads(int n);

}  // namespace quickstart
