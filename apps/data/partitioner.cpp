#include "apps/data/partitioner.hpp"

#include <algorithm>
#include <numeric>
#include <random>

namespace stamen::data {

namespace {

using rng_t = std::mt19937_64;

// Fisher-Yates with our own index draw: std::shuffle's use of the engine is
// unspecified, and partitions must not change with the standard library.
void shuffle(index_list& xs, rng_t& rng) {
  for (size_t i = xs.size(); i > 1; --i) std::swap(xs[i - 1], xs[rng() % i]);
}

std::vector<index_list> by_class(const std::vector<uint8_t>& labels, size_t num_classes) {
  std::vector<index_list> out(num_classes);
  for (uint32_t i = 0; i < labels.size(); ++i) out[labels[i]].push_back(i);
  return out;
}

failure bad(std::string what) { return failure{errc::invalid_argument, std::move(what)}; }

std::vector<index_list> iid(size_t n, const partition_options& o, rng_t& rng) {
  index_list all(n);
  std::iota(all.begin(), all.end(), 0u);
  shuffle(all, rng);
  std::vector<index_list> out(o.num_partitions);
  // Sizes differ by at most one, like numpy.array_split.
  size_t base = n / o.num_partitions, extra = n % o.num_partitions, pos = 0;
  for (size_t p = 0; p < o.num_partitions; ++p) {
    size_t len = base + (p < extra ? 1 : 0);
    out[p].assign(all.begin() + static_cast<long>(pos), all.begin() + static_cast<long>(pos + len));
    pos += len;
  }
  return out;
}

expected<std::vector<index_list>> dirichlet(const std::vector<uint8_t>& labels, size_t num_classes,
                                            const partition_options& o, rng_t& rng) {
  if (!(o.alpha > 0)) return bad("dirichlet alpha must be positive");
  auto classes = by_class(labels, num_classes);
  size_t P = o.num_partitions;
  double avg = static_cast<double>(labels.size()) / static_cast<double>(P);
  std::gamma_distribution<double> gamma(o.alpha, 1.0);
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::vector<index_list> out(P);
    for (auto cls : classes) {
      shuffle(cls, rng);
      std::vector<double> p(P);
      double sum = 0;
      for (size_t i = 0; i < P; ++i) {
        // Self-balancing, as in Flower Datasets: full partitions take no more.
        p[i] = static_cast<double>(out[i].size()) < avg ? gamma(rng) : 0.0;
        sum += p[i];
      }
      if (sum <= 0) std::fill(p.begin(), p.end(), 1.0), sum = static_cast<double>(P);
      size_t start = 0;
      double cum = 0;
      for (size_t i = 0; i < P; ++i) {
        cum += p[i] / sum;
        size_t end = i + 1 == P ? cls.size() : static_cast<size_t>(cum * static_cast<double>(cls.size()));
        end = std::max(end, start);
        out[i].insert(out[i].end(), cls.begin() + static_cast<long>(start), cls.begin() + static_cast<long>(end));
        start = end;
      }
    }
    size_t smallest = labels.size();
    for (auto& x : out) smallest = std::min(smallest, x.size());
    if (smallest >= o.min_partition_size) {
      for (auto& x : out) shuffle(x, rng);
      return out;
    }
  }
  return bad("dirichlet partitioning found no split with every partition at least " +
             std::to_string(o.min_partition_size) + " samples in 100 attempts; raise alpha or " +
             "lower min-partition-size");
}

expected<std::vector<index_list>> pathological(const std::vector<uint8_t>& labels,
                                               size_t num_classes, const partition_options& o,
                                               rng_t& rng) {
  size_t k = o.classes_per_partition;
  if (k == 0 || k > num_classes)
    return bad("classes-per-partition must be in 1.." + std::to_string(num_classes));
  auto classes = by_class(labels, num_classes);
  size_t P = o.num_partitions;
  // Partition p holds classes p, p+1, ..., p+k-1 (mod C): every class is used
  // when P * k >= C, and each class is shared by the partitions that hold it.
  std::vector<std::vector<size_t>> holders(num_classes);
  for (size_t p = 0; p < P; ++p)
    for (size_t j = 0; j < k; ++j) holders[(p + j) % num_classes].push_back(p);
  std::vector<index_list> out(P);
  for (size_t c = 0; c < num_classes; ++c) {
    auto& hs = holders[c];
    if (hs.empty()) continue;
    auto cls = classes[c];
    shuffle(cls, rng);
    for (size_t i = 0; i < cls.size(); ++i) out[hs[i % hs.size()]].push_back(cls[i]);
  }
  for (auto& x : out) shuffle(x, rng);
  return out;
}

expected<std::vector<index_list>> shard(const std::vector<uint8_t>& labels,
                                        const partition_options& o, rng_t& rng) {
  size_t s = o.shards_per_partition, P = o.num_partitions;
  if (s == 0) return bad("shards-per-partition must be positive");
  size_t shards = P * s;
  if (shards > labels.size()) return bad("more shards than samples");
  index_list order(labels.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return labels[a] < labels[b]; });
  size_t size = labels.size() / shards;  // the remainder is left out, as in Flower
  index_list ids(shards);
  std::iota(ids.begin(), ids.end(), 0u);
  shuffle(ids, rng);
  std::vector<index_list> out(P);
  for (size_t i = 0; i < shards; ++i) {
    auto& part = out[i / s];
    auto begin = order.begin() + static_cast<long>(ids[i] * size);
    part.insert(part.end(), begin, begin + static_cast<long>(size));
  }
  for (auto& x : out) shuffle(x, rng);
  return out;
}

}  // namespace

expected<std::vector<index_list>> make_partitions(const std::vector<uint8_t>& labels,
                                                  size_t num_classes,
                                                  const partition_options& o) {
  if (o.num_partitions == 0) return bad("num-partitions must be positive");
  if (o.num_partitions > labels.size())
    return bad("cannot split " + std::to_string(labels.size()) + " samples into " +
               std::to_string(o.num_partitions) + " partitions");
  rng_t rng(o.seed);
  if (o.kind == "iid") return iid(labels.size(), o, rng);
  if (o.kind == "dirichlet") return dirichlet(labels, num_classes, o, rng);
  if (o.kind == "pathological") return pathological(labels, num_classes, o, rng);
  if (o.kind == "shard") return shard(labels, o, rng);
  return bad("unknown partitioner '" + o.kind + "' (iid, dirichlet, pathological or shard)");
}

train_test split_train_test(index_list indices, double test_fraction, uint64_t seed) {
  rng_t rng(seed);
  shuffle(indices, rng);
  auto n_test = static_cast<size_t>(static_cast<double>(indices.size()) * test_fraction);
  train_test out;
  out.test.assign(indices.begin(), indices.begin() + static_cast<long>(n_test));
  out.train.assign(indices.begin() + static_cast<long>(n_test), indices.end());
  return out;
}

}  // namespace stamen::data
