// GB/s of client bytes folded into FedAvg's running sum (single thread),
// next to a plain streaming weighted sum over the same bytes.
#include "bench/bench_util.hpp"
#include "runtime/strategy/fed_avg.hpp"

using namespace stamen;

namespace {

void run(size_t replies, size_t floats) {
  std::vector<message> msgs;
  array_record global{{"w", array::from_values(dtype::float32, {static_cast<int64_t>(floats)},
                                               std::vector<float>(floats, 0.f))}};
  for (size_t r = 0; r < replies; ++r) {
    std::vector<float> v(floats, 0.001f * static_cast<float>(r + 1));
    record_dict c;
    c.insert_or_assign("arrays", array_record{{"w", array::from_values(dtype::float32,
                                                  {static_cast<int64_t>(floats)}, v)}});
    c.insert_or_assign("metrics", metric_record{{"num-examples", static_cast<int64_t>(r + 1)}});
    auto in = make_instruction({}, "train", r + 2);
    msgs.push_back(make_reply(*in, std::move(c)));
  }
  fed_avg s;
  auto fold = [&] {
    auto agg = s.make_train_aggregator(1, global);
    for (auto& m : msgs)
      if (!agg->accept(m)) std::abort();
    auto out = agg->finish();
  };
  // The same kind of memory as FedAvg's running sum (2 MiB pages for large
  // sizes): with a std::vector's 4 KiB pages, TLB misses made the 100M-float
  // baseline 5x slower than the fold it is meant to bound.
  auto [sum_buf, sum_raw] = buffer::allocate(floats * sizeof(double));
  auto* sum = reinterpret_cast<double*>(sum_raw);
  auto plain = [&] {
    std::fill(sum, sum + floats, 0.0);
    double total = 0;
    for (size_t r = 0; r < replies; ++r) {
      auto* x = reinterpret_cast<const float*>(msgs[r].content().arrays("arrays")->get("w")->data());
      double w = static_cast<double>(r + 1);
      for (size_t i = 0; i < floats; ++i) sum[i] += w * x[i];
      total += w;
    }
    for (size_t i = 0; i < floats; ++i) sum[i] /= total;
  };
  // Alternated, so that a noisy neighbour slows both alike.
  auto t = bench::paired_median_times(replies >= 100 ? 21 : 5, 1, fold, plain);
  double t_fold = t.a, t_plain = t.b, ratio = t.b_over_a;
  double bytes = static_cast<double>(replies * floats * 4);
  bench::line("fedavg_throughput").num("replies", replies).num("floats", floats)
      .num("gbps", bytes / t_fold / 1e9).num("baseline_plain_sum_gbps", bytes / t_plain / 1e9)
      .num("ratio", ratio).num("target_ratio", 0.85).flag("met", ratio >= 0.85)
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  size_t big = argc > 1 ? std::stoul(argv[1]) : 100'000'000;
  run(1000, 62006);
  run(10, big);
}
