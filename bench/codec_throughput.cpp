// Encode and decode GB/s of a 100 MB ArrayRecord, next to memcpy of the same
// bytes (into memory that was already touched) in the same process.
#include <cstring>

#include "bench/bench_util.hpp"
#include "messages/codec.hpp"

using namespace stamen;

int main(int argc, char** argv) {
  size_t mb = argc > 1 ? std::stoul(argv[1]) : 100;
  size_t n = mb << 20;
  auto [bytes, raw] = buffer::allocate(n);
  for (size_t i = 0; i < n; ++i) raw[i] = static_cast<std::byte>(i * 131);
  record_dict content;
  content.insert_or_assign("arrays", array_record{{"w", *array::make(dtype::float32,
                                                                      {static_cast<int64_t>(n / 4)}, bytes)}});
  auto msg = *make_instruction(std::move(content), "train", 2);

  std::vector<std::byte> dst(n);
  std::memset(dst.data(), 1, n);
  double t_memcpy = bench::median_time(7, 2, [&] { std::memcpy(dst.data(), raw, n); });

  buffer encoded;
  double t_encode = bench::median_time(7, 2, [&] { encoded = *encode(msg); });
  double t_decode = bench::median_time(7, 2, [&] {
    auto m = decode(encoded);
    if (!m) std::abort();
  });
  auto gbps = [&](double t) { return static_cast<double>(n) / t / 1e9; };
  bench::line("codec_throughput").str("op", "encode").num("bytes", n).num("gbps", gbps(t_encode))
      .num("baseline_memcpy_gbps", gbps(t_memcpy)).num("ratio", t_memcpy / t_encode)
      .num("target_ratio", 0.7).flag("met", t_memcpy / t_encode >= 0.7).print();
  bench::line("codec_throughput").str("op", "decode").num("bytes", n).num("gbps", gbps(t_decode))
      .num("baseline_memcpy_gbps", gbps(t_memcpy)).num("ratio", t_memcpy / t_decode)
      .num("target_ratio", 10).flag("met", t_memcpy / t_decode >= 10).print();
}
