// Wall time and peak RSS of the quickstart federation (`stamen run`, as a
// child process) next to a plain LibTorch loop in this process doing the same
// training and evaluation: same partitions, samples, batches and rounds, with
// 2 intra-op threads and no runtime.
//   quickstart_e2e STAMEN_BIN APP_DIR [nodes...]   (default nodes: 10 100)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "apps/quickstart/task.hpp"
#include "bench/bench_util.hpp"

using namespace quickstart;

namespace {

constexpr int kRounds = 3;

// FedAvg by hand: the weighted mean of float32 arrays.
array_record average(const std::vector<std::pair<array_record, double>>& updates) {
  array_record out;
  double total = 0;
  for (auto& u : updates) total += u.second;
  for (auto& [k, a] : updates.front().first) {
    std::vector<double> sum(static_cast<size_t>(a.numel()), 0.0);
    for (auto& [arrays, w] : updates) {
      auto* x = reinterpret_cast<const float*>(arrays.get(k)->data());
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += w * x[i];
    }
    std::vector<float> avg(sum.size());
    for (size_t i = 0; i < sum.size(); ++i) avg[i] = static_cast<float>(sum[i] / total);
    out.insert_or_assign(k, stamen::array::from_values(a.type(), a.shape(), avg));
  }
  return out;
}

double plain_loop(size_t nodes, std::vector<double>& accuracy) {
  torch_threads(2);
  double t0 = bench::now_s();
  data_spec spec;
  spec.partitioning.seed = 42;
  data_store store;
  std::vector<node_data> data;
  for (size_t p = 0; p < nodes; ++p) data.push_back(*store.partition(spec, p, nodes));
  model global{shape_of(spec.dataset)};
  model worker{shape_of(spec.dataset)};
  for (int r = 1; r <= kRounds; ++r) {
    std::vector<std::pair<array_record, double>> updates;
    // fraction-train 0.5: which half does not change the work.
    for (size_t p = (r % 2); p < nodes; p += 2) {
      (void)worker.load(global.arrays());
      worker.train(data[p], 1, 0.01, 32, 42 + p + r);
      updates.emplace_back(worker.arrays(), static_cast<double>(data[p].train.size()));
    }
    (void)global.load(average(updates));
    double correct = 0, total = 0;
    for (size_t p = 0; p < nodes; ++p) {
      (void)worker.load(global.arrays());
      auto [loss, acc] = worker.test(data[p], 32);
      correct += acc * static_cast<double>(data[p].test.size());
      total += static_cast<double>(data[p].test.size());
    }
    accuracy.push_back(correct / total);
  }
  return bench::now_s() - t0;
}

struct child_run {
  double seconds = 0;
  double peak_rss_mb = 0;
  int status = -1;
};

child_run run_stamen(const std::string& bin, const std::string& app, size_t nodes) {
  double t0 = bench::now_s();
  pid_t pid = fork();
  if (pid == 0) {
    std::string fed = nodes == 10 ? "local-simulation" : "local-simulation-" + std::to_string(nodes);
    execl(bin.c_str(), bin.c_str(), "run", app.c_str(), "--federation", fed.c_str(),
          "--run-config", "final-model='/tmp/stamen-bench-final.pt'", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  return {bench::now_s() - t0, static_cast<double>(ru.ru_maxrss) / 1024.0, status};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: quickstart_e2e STAMEN_BIN APP_DIR [nodes...]\n");
    return 2;
  }
  std::vector<size_t> sizes;
  for (int i = 3; i < argc; ++i) sizes.push_back(std::stoul(argv[i]));
  if (sizes.empty()) sizes = {10, 100};
  for (auto n : sizes) {
    auto fed = run_stamen(argv[1], argv[2], n);
    std::vector<double> acc;
    double loop = plain_loop(n, acc);
    double ratio = fed.seconds / loop;
    double target = n <= 10 ? 0.8 : 1.0;
    bench::line("quickstart_e2e").num("nodes", n).num("seconds", fed.seconds)
        .num("peak_rss_mb", fed.peak_rss_mb).num("baseline_plain_loop_seconds", loop)
        .num("ratio", ratio).num("target_ratio", target).flag("met", ratio <= target)
        .num("loop_round3_eval_acc", acc.back()).flag("exit_ok", fed.status == 0)
        .flag("rss_met", n > 10 || fed.peak_rss_mb <= 500).print();
  }
}
