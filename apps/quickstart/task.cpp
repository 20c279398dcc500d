#include "apps/quickstart/task.hpp"

#include <torch/torch.h>

#include <fstream>
#include <mutex>
#include <numeric>
#include <random>

#include "apps/data/loaders.hpp"
#include "messages/torch_bridge.hpp"

namespace quickstart {

namespace {

constexpr int64_t kNumClasses = 10;

// The tutorial's CNN: conv 5x5 -> 6, pool, conv 5x5 -> 16, pool, 120, 84, 10.
struct net_impl : torch::nn::Module {
  explicit net_impl(image_shape s) {
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(s.channels, 6, 5)));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, 5)));
    // Flatten size follows from the input: two (conv 5x5, pool 2) stages.
    auto side = [](int64_t x) { return ((x - 4) / 2 - 4) / 2; };
    flat = 16 * side(s.height) * side(s.width);
    fc1 = register_module("fc1", torch::nn::Linear(flat, 120));
    fc2 = register_module("fc2", torch::nn::Linear(120, 84));
    fc3 = register_module("fc3", torch::nn::Linear(84, kNumClasses));
  }

  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2->forward(x)), 2);
    x = x.view({-1, flat});
    x = torch::relu(fc1->forward(x));
    x = torch::relu(fc2->forward(x));
    return fc3->forward(x);
  }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
  int64_t flat = 0;
};

// A batch of images normalized to mean 0.5, std 0.5 per channel, and labels.
std::pair<torch::Tensor, torch::Tensor> make_batch(const stamen::data::image_dataset& ds,
                                                   const stamen::data::index_list& idx,
                                                   size_t begin, size_t end,
                                                   const torch::Device& device) {
  auto n = static_cast<int64_t>(end - begin);
  auto size = ds.image_size();
  auto pixels = torch::empty({n, static_cast<int64_t>(ds.channels),
                              static_cast<int64_t>(ds.height), static_cast<int64_t>(ds.width)},
                             torch::kUInt8);
  auto labels = torch::empty({n}, torch::kInt64);
  auto* p = pixels.data_ptr<uint8_t>();
  auto* l = labels.data_ptr<int64_t>();
  for (size_t i = begin; i < end; ++i) {
    std::memcpy(p + (i - begin) * size, ds.image(idx[i]), size);
    l[i - begin] = ds.labels[idx[i]];
  }
  auto x = pixels.to(torch::kFloat32).div_(255.0).sub_(0.5).div_(0.5);
  return {x.to(device), labels.to(device)};
}

std::string key_of(const data_spec& s) {
  return s.dataset + "|" + s.data_dir;
}

std::string partition_key(const data_spec& s, size_t n) {
  auto& p = s.partitioning;
  return key_of(s) + "|" + p.kind + "|" + std::to_string(n) + "|" + std::to_string(p.seed) + "|" +
         std::to_string(p.alpha) + "|" + std::to_string(p.min_partition_size) + "|" +
         std::to_string(p.classes_per_partition) + "|" + std::to_string(p.shards_per_partition);
}

}  // namespace

data_spec data_spec::from(const config_record& rc) {
  data_spec s;
  s.dataset = config_string(rc, "dataset");
  if (rc.contains("data-dir")) s.data_dir = config_string(rc, "data-dir");
  auto& p = s.partitioning;
  p.kind = config_string(rc, "partitioner");
  p.seed = static_cast<uint64_t>(config_int(rc, "seed"));
  if (rc.contains("dirichlet-alpha")) p.alpha = config_double(rc, "dirichlet-alpha");
  if (rc.contains("min-partition-size"))
    p.min_partition_size = static_cast<size_t>(config_int(rc, "min-partition-size"));
  if (rc.contains("classes-per-partition"))
    p.classes_per_partition = static_cast<size_t>(config_int(rc, "classes-per-partition"));
  if (rc.contains("shards-per-partition"))
    p.shards_per_partition = static_cast<size_t>(config_int(rc, "shards-per-partition"));
  return s;
}

image_shape shape_of(const std::string& dataset) {
  if (dataset == "cifar10") return {3, 32, 32};
  if (dataset == "fashion-mnist" || dataset == "mnist") return {1, 28, 28};
  throw std::invalid_argument("unknown dataset '" + dataset + "' (fashion-mnist, mnist, cifar10)");
}

expected<node_data> data_store::partition(const data_spec& spec, size_t partition_id,
                                          size_t num_partitions) {
  if (partition_id >= num_partitions)
    return stamen::fail(stamen::errc::invalid_argument,
                        "partition-id " + std::to_string(partition_id) + " is not below num-partitions " +
                            std::to_string(num_partitions));
  std::lock_guard<std::mutex> guard{mtx_};
  auto& ds = datasets_[key_of(spec)];
  if (!ds) {
    auto dir = spec.data_dir;
    expected<stamen::data::image_dataset> loaded =
        stamen::fail(stamen::errc::invalid_argument, "unknown dataset '" + spec.dataset + "'");
    if (spec.dataset == "fashion-mnist" || spec.dataset == "mnist")
      loaded = stamen::data::load_mnist_dir(dir.empty() ? stamen::data::default_fashion_mnist_dir : dir);
    else if (spec.dataset == "cifar10")
      loaded = stamen::data::load_cifar10_dir(dir.empty() ? "data/cifar-10-batches-bin" : dir);
    if (!loaded) {
      datasets_.erase(key_of(spec));
      return loaded.error();
    }
    ds = std::make_shared<const stamen::data::image_dataset>(std::move(*loaded));
  }
  auto& parts = partitions_[partition_key(spec, num_partitions)];
  if (!parts) {
    auto opts = spec.partitioning;
    opts.num_partitions = num_partitions;
    auto made = stamen::data::make_partitions(ds->labels, ds->num_classes, opts);
    if (!made) {
      partitions_.erase(partition_key(spec, num_partitions));
      return made.error();
    }
    parts = std::make_shared<const std::vector<stamen::data::index_list>>(std::move(*made));
  }
  auto split = stamen::data::split_train_test((*parts)[partition_id], spec.test_fraction,
                                              spec.partitioning.seed + partition_id);
  return node_data{ds, std::move(split.train), std::move(split.test)};
}

struct model::impl {
  explicit impl(image_shape s)
      : net(std::make_shared<net_impl>(s)),
        device(torch::cuda::is_available() ? torch::kCUDA : torch::kCPU) {
    net->to(device);
  }
  std::shared_ptr<net_impl> net;
  torch::Device device;
};

model::model(image_shape shape, std::optional<uint64_t> seed) {
  if (!seed) {
    impl_ = std::make_unique<impl>(shape);
    return;
  }
  // LibTorch's module initializers draw from its global generator, which
  // starts from a random seed: seeding it, under a lock so that no other
  // thread's draws interleave, makes the initial weights a function of the seed.
  static std::mutex global_generator;
  std::lock_guard<std::mutex> guard{global_generator};
  torch::manual_seed(*seed);
  impl_ = std::make_unique<impl>(shape);
}
model::~model() = default;

array_record model::arrays() const { return stamen::state_dict_to_arrays(*impl_->net); }

expected<void> model::load(const array_record& arrays) {
  return stamen::load_arrays_into(*impl_->net, arrays);
}

std::string model::device_name() const { return impl_->device.str(); }

double model::train(const node_data& data, int64_t epochs, double lr, int64_t batch_size,
                    uint64_t seed, double proximal_mu) {
  auto& net = *impl_->net;
  net.train();
  torch::optim::Adam opt(net.parameters(), torch::optim::AdamOptions(lr));
  // FedProx: the weights as received, for the proximal term.
  std::vector<torch::Tensor> global;
  if (proximal_mu > 0)
    for (auto& p : net.parameters()) global.push_back(p.detach().clone());
  auto order = data.train;
  std::mt19937_64 rng{seed};
  double total = 0;
  size_t batches = 0;
  auto bs = static_cast<size_t>(batch_size);
  for (int64_t e = 0; e < epochs; ++e) {
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
    for (size_t b = 0; b < order.size(); b += bs) {
      auto [x, y] = make_batch(*data.dataset, order, b, std::min(order.size(), b + bs), impl_->device);
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net.forward(x), y);
      total += loss.item<double>();  // the task's loss, comparable across strategies
      if (proximal_mu > 0) {
        auto params = net.parameters();
        auto prox = torch::zeros({}, loss.options());
        for (size_t i = 0; i < params.size(); ++i) prox = prox + (params[i] - global[i]).pow(2).sum();
        loss = loss + (proximal_mu / 2) * prox;
      }
      loss.backward();
      opt.step();
      ++batches;
    }
  }
  return batches == 0 ? 0.0 : total / static_cast<double>(batches);
}

std::pair<double, double> model::test(const node_data& data, int64_t batch_size) {
  auto& net = *impl_->net;
  net.eval();
  torch::NoGradGuard no_grad;
  double loss = 0;
  int64_t correct = 0;
  size_t batches = 0;
  auto bs = static_cast<size_t>(batch_size);
  for (size_t b = 0; b < data.test.size(); b += bs) {
    auto [x, y] = make_batch(*data.dataset, data.test, b, std::min(data.test.size(), b + bs),
                             impl_->device);
    auto out = net.forward(x);
    loss += torch::nn::functional::cross_entropy(out, y).item<double>();
    correct += out.argmax(1).eq(y).sum().item<int64_t>();
    ++batches;
  }
  if (data.test.empty()) return {0.0, 0.0};
  return {loss / static_cast<double>(batches),
          static_cast<double>(correct) / static_cast<double>(data.test.size())};
}

expected<void> save_state_dict(const array_record& arrays, const std::string& path) {
  try {
    c10::Dict<std::string, at::Tensor> dict;
    for (auto& [k, a] : arrays) dict.insert(k, stamen::to_tensor(a));
    auto bytes = torch::pickle_save(c10::IValue(dict));
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return stamen::fail(stamen::errc::io_error, "cannot write '" + path + "'");
    return {};
  } catch (const c10::Error& e) {
    return stamen::fail(stamen::errc::io_error, "cannot save '" + path + "': " + e.what_without_backtrace());
  }
}

expected<array_record> load_state_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return stamen::fail(stamen::errc::io_error, "cannot open '" + path + "'");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    auto value = torch::pickle_load(bytes);
    array_record out;
    for (auto& entry : value.toGenericDict())
      out.insert_or_assign(entry.key().toStringRef(), stamen::to_array(entry.value().toTensor()));
    return out;
  } catch (const c10::Error& e) {
    return stamen::fail(stamen::errc::io_error, "'" + path + "' is not a state dict: " +
                                                    e.what_without_backtrace());
  }
}

void use_one_thread() { torch::set_num_threads(1); }

void torch_threads(int n) { torch::set_num_threads(n); }

}  // namespace quickstart
