#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "messages/expected.hpp"

namespace stamen::data {

/// How to split a data set's indices among nodes, as Flower Datasets does.
struct partition_options {
  std::string kind = "iid";  ///< iid | dirichlet | pathological | shard
  size_t num_partitions = 10;  ///< how many partitions (nodes); a simulation's num-partitions
  uint64_t seed = 42;          ///< seeds every random choice, as Flower Datasets' default 42
  double alpha = 0.5;               ///< dirichlet: concentration
  size_t min_partition_size = 10;   ///< dirichlet: resample until every partition has this many
  size_t classes_per_partition = 2; ///< pathological
  size_t shards_per_partition = 2;  ///< shard
};

/// Indices into a data set's images (and labels), one partition's or split's.
using index_list = std::vector<uint32_t>;

/// Splits the indices of `labels` into disjoint partitions; the same options
/// give the same partitions on every run.
expected<std::vector<index_list>> make_partitions(const std::vector<uint8_t>& labels,
                                                  size_t num_classes,
                                                  const partition_options& opts);

/// A partition's 80/20 (by default) split into train and test indices.
struct train_test {
  index_list train;  ///< indices for training
  index_list test;   ///< indices held out for evaluation
};
/// Shuffles `indices` with `seed` and holds out floor(size * test_fraction)
/// of them for evaluation (`test_fraction` in [0, 1]; the quickstart's 0.2 is
/// Flower's `train_test_split(test_size=0.2)`); the same seed gives the same
/// split.
train_test split_train_test(index_list indices, double test_fraction, uint64_t seed);

}  // namespace stamen::data
