// What a checkpoint costs a round: seconds and bytes to save a strategy's
// whole state (arrays, history, RNG) through checkpoint_store, for the
// quickstart's CNN and for a 100M-float model, next to writing the same
// number of bytes to a file with write() and fsync() (the baseline).
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "bench/bench_util.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/strategy/fed_avg.hpp"

using namespace stamen;
namespace fs = std::filesystem;

namespace {

// The quickstart's CNN (PyTorch's tutorial Net): its parameter shapes.
array_record cnn() {
  array_record r;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    r.insert_or_assign(name, array::from_values(dtype::float32, shape, std::vector<float>(static_cast<size_t>(n), 0.5f)));
  };
  add("conv1.weight", {6, 1, 5, 5});
  add("conv1.bias", {6});
  add("conv2.weight", {16, 6, 5, 5});
  add("conv2.bias", {16});
  add("fc1.weight", {120, 256});
  add("fc1.bias", {120});
  add("fc2.weight", {84, 120});
  add("fc2.bias", {84});
  add("fc3.weight", {10, 84});
  add("fc3.bias", {10});
  return r;
}

array_record big(size_t floats) {
  return {{"w", array::from_values(dtype::float32, {static_cast<int64_t>(floats)}, std::vector<float>(floats, 0.25f))}};
}

void measure(const std::string& model, const array_record& arrays, const fs::path& dir, int reps) {
  // A run 100 rounds in: its history is part of every checkpoint.
  strategy_result result;
  result.arrays = arrays;
  for (int r = 1; r <= 100; ++r) {
    phase_report p;
    p.round = r;
    p.sampled = p.results = 10;
    result.train_rounds.push_back(p);
    result.evaluate_rounds.push_back(p);
    result.evaluate_metrics_clientapp[r] = metric_record{{"eval_loss", 0.5}, {"eval_acc", 0.8}};
  }
  fed_avg strategy;
  checkpoint_store store{dir, "bench"};
  uint64_t bytes = 0;
  double t_save = bench::median_time(reps, 1, [&] {
    record_dict s;
    s.insert_or_assign("checkpoint", config_record{{"strategy", std::string{"FedAvg"}}, {"round", int64_t{100}}});
    s.insert_or_assign("global", result.arrays);
    save_history(result, s);
    strategy.save_state(s);
    if (!store.save(s)) std::abort();
    bytes = store.last_save_bytes();
  });
  std::vector<char> raw(bytes, 'x');
  auto file = dir / "baseline.bin";
  double t_raw = bench::median_time(reps, 1, [&] {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    size_t done = 0;
    while (done < raw.size()) {
      auto n = ::write(fd, raw.data() + done, raw.size() - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    ::fsync(fd);
    ::close(fd);
  });
  bench::line("checkpoint_cost")
      .str("model", model)
      .num("bytes", static_cast<double>(bytes))
      .num("save_ms", t_save * 1000)
      .num("baseline_write_fsync_ms", t_raw * 1000)
      .num("ratio_to_baseline", t_save / t_raw)
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  size_t big_floats = argc > 1 ? std::stoul(argv[1]) : 100000000;
  auto dir = fs::temp_directory_path() / ("stamen-bench-checkpoint-" + std::to_string(getpid()));
  measure("quickstart-cnn", cnn(), dir, 9);
  measure(std::to_string(big_floats) + "-floats", big(big_floats), dir, 3);
  fs::remove_all(dir);
}
