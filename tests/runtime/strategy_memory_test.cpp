// What streaming and non-streaming strategies hold, measured: the heap in use
// (the allocator's own count) after every reply, and the peak resident size over a whole
// round (VmHWM, reset through /proc/self/clear_refs).
#include <boost/test/unit_test.hpp>

#include <malloc.h>

#include <fstream>
#include <string>

#include "runtime/strategy/fed_opt.hpp"
#include "runtime/strategy/multi_krum.hpp"

using namespace stamen;

namespace {

constexpr int64_t model_floats = 62006;  // the CIFAR-10 Net of Flower's quickstart
constexpr double model_bytes = model_floats * 4.0;

// tcmalloc's C interface, present when the test runs with it (the
// executables' allocator; see CMakeLists.txt).
extern "C" int MallocExtension_GetNumericProperty(const char* property, size_t* value)
    __attribute__((weak));

// Bytes handed out by the allocator and not freed: tcmalloc's count under
// tcmalloc (glibc's statistics see none of its memory), glibc's otherwise.
size_t heap_in_use() {
  size_t v = 0;
  if (MallocExtension_GetNumericProperty != nullptr &&
      MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &v) != 0)
    return v;
  auto m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// Resets the peak resident size; false where the kernel does not allow it.
bool reset_peak() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  return static_cast<bool>(f.flush());
}

size_t status_kb(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoul(line.substr(field.size() + 1));
  return 0;
}

array_record model(float base) {
  std::vector<float> w(model_floats);
  for (int64_t i = 0; i < model_floats; ++i) w[i] = base + 1e-4f * static_cast<float>(i % 97);
  array_record r;
  r.insert_or_assign("w", array::from_values(dtype::float32, {model_floats}, w));
  return r;
}

message reply(uint64_t node, float base) {
  auto in = make_instruction({}, "train", node);
  record_dict c;
  c.insert_or_assign("arrays", model(base));
  c.insert_or_assign("metrics", metric_record{{"num-examples", int64_t{10}}});
  return make_reply(*in, c);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(strategy_memory)

BOOST_AUTO_TEST_CASE(fedadam_folds_a_thousand_replies_in_o_model_memory) {
  fed_adam s;
  auto current = model(0);
  bool peak = reset_peak();
  size_t rss0 = status_kb("VmRSS");
  size_t base = heap_in_use();
  size_t most = 0;
  auto agg = s.make_train_aggregator(1, current);
  for (int k = 0; k < 1000; ++k) {
    BOOST_REQUIRE(agg->accept(reply(static_cast<uint64_t>(k + 1), 0.001f * static_cast<float>(k % 13))).has_value());
    most = std::max(most, heap_in_use() - std::min(base, heap_in_use()));
  }
  auto out = agg->finish();
  agg.reset();
  auto next = s.update_global(1, current, std::move(*out.arrays));
  // The running sum (doubles: 2 models) and nothing per reply.
  BOOST_TEST(most / model_bytes < 4.0, "held " << most / model_bytes << " models after 1000 replies");
  if (peak) {
    double grown = (static_cast<double>(status_kb("VmHWM")) - static_cast<double>(rss0)) * 1024;
    // Sum, moments and the step's scratch: a handful of models, not 1000.
    BOOST_TEST(grown / model_bytes < 16.0, "peak grew by " << grown / model_bytes << " models");
  } else {
    BOOST_TEST_MESSAGE("no /proc/self/clear_refs: peak resident size not checked");
  }
  BOOST_TEST(next.get("w")->numel() == model_floats);
}

BOOST_AUTO_TEST_CASE(krum_holds_every_reply_of_the_round_and_no_more) {
  krum s({}, 10);
  auto current = model(0);
  bool peak = reset_peak();
  size_t rss0 = status_kb("VmRSS");
  size_t base = heap_in_use();
  auto agg = s.make_train_aggregator(1, current);
  for (int k = 0; k < 100; ++k)
    BOOST_REQUIRE(agg->accept(reply(static_cast<uint64_t>(k + 1), 0.001f * static_cast<float>(k))).has_value());
  double held = static_cast<double>(heap_in_use() - base) / model_bytes;
  // The replies as they arrived (float32, not widened): 100 models, plus
  // each message's envelope, plus what the allocator rounds each model's
  // 248,024 bytes up to (tcmalloc: a size class about 3% larger).
  BOOST_TEST(held >= 100.0, "held " << held << " models");
  BOOST_TEST(held < 104.0, "held " << held << " models");
  auto out = agg->finish();
  BOOST_REQUIRE(out.arrays.has_value());
  if (peak) {
    double grown = (static_cast<double>(status_kb("VmHWM")) - static_cast<double>(rss0)) * 1024;
    // The replies, plus a block of distances' scratch and the result.
    BOOST_TEST(grown / model_bytes < 108.0, "peak grew by " << grown / model_bytes << " models");
  }
  // Krum returns one of the replies (0.000 .. 0.099 apart), a central one.
  auto w = out.arrays->get("w")->to_vector<float>();
  double k = w[0] / 0.001;
  BOOST_TEST(std::abs(k - std::round(k)) < 1e-3, w[0]);
  BOOST_TEST((w[0] > 0.03f && w[0] < 0.07f), w[0]);
}

BOOST_AUTO_TEST_SUITE_END()
