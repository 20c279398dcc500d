#include "runtime/strategy/array_fold.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "runtime/format.hpp"

namespace stamen {

namespace {

// Values are folded in blocks small enough to stay in L1 (see fold), so the
// reply's bytes are streamed from memory once and a bad value is never added.
constexpr size_t block = 2048;

// Whether x is NaN or an infinity, from its exponent bits (branch-free, so
// that the loops below vectorize).
inline uint32_t non_finite(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  return static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
}
inline uint64_t non_finite(double x) {
  uint64_t bits;
  std::memcpy(&bits, &x, 8);
  return static_cast<uint64_t>((bits & 0x7ff0000000000000ull) == 0x7ff0000000000000ull);
}

template <class T>
bool block_is_finite(const T* x, size_t n) {
  if constexpr (std::is_floating_point_v<T>) {
    decltype(non_finite(T{})) bad = 0;
    for (size_t i = 0; i < n; ++i) bad |= non_finite(x[i]);
    return bad == 0;
  } else {
    return true;
  }
}

// sum += w * x (or, for the first record, sum = w * x: the sums are then not
// read, nor zeroed before, which for a 100M-float model saves writing and
// reading 800 MB); on a non-finite value, takes back what it added and fails
// (a first record needs nothing taken back: the sums are not in use yet).
// For floating dtypes a block of x is added only once all its values were
// checked finite, so a NaN never reaches the sums.
template <class T, bool first>
[[gnu::always_inline]] inline bool fold_body(double* sum, const std::byte* raw, size_t n, double w) {
  auto* x = reinterpret_cast<const T*>(raw);  // buffers are 8-byte aligned
  if constexpr (first && std::is_floating_point_v<T>) {
    decltype(non_finite(T{})) bad = 0;
    for (size_t i = 0; i < n; ++i) {
      bad |= non_finite(x[i]);
      sum[i] = w * static_cast<double>(x[i]);
    }
    return bad == 0;
  } else if constexpr (first) {
    for (size_t i = 0; i < n; ++i) sum[i] = w * static_cast<double>(x[i]);
  } else if constexpr (std::is_floating_point_v<T>) {
    // Each block is checked one block ahead of being folded: the loop that
    // folds block b (already known finite, from L1) reads block b+1 for the
    // check, so the reply's bytes stream from memory once, in one unbroken
    // pass the prefetcher follows, and the sums are written in place.
    decltype(non_finite(T{})) bad = 0;
    for (size_t i = 0; i < std::min(block, n); ++i) bad |= non_finite(x[i]);
    if (bad != 0) return false;
    for (size_t b = 0; b < n; b += block) {
      size_t len = std::min(block, n - b), next = b + block;
      size_t ahead = next < n ? std::min(block, n - next) : 0;  // <= len: only the last block is short
      for (size_t i = 0; i < ahead; ++i) {
        sum[b + i] += w * static_cast<double>(x[b + i]);
        bad |= non_finite(x[next + i]);
      }
      for (size_t i = ahead; i < len; ++i) sum[b + i] += w * static_cast<double>(x[b + i]);
      if (bad != 0) {
        // Rare path: subtracting back is exact to rounding, far below 1e-12.
        for (size_t i = 0; i < next; ++i) sum[i] -= w * static_cast<double>(x[i]);
        return false;
      }
    }
  } else {
    for (size_t i = 0; i < n; ++i) sum[i] += w * static_cast<double>(x[i]);
  }
  return true;
}

// The float folds are built for AVX-512 and AVX2 as well as the baseline
// x86-64 (SSE2) the package is compiled for; the loader picks the widest the
// CPU has. Converting and multiplying 8 or 16 lanes at a time keeps more of
// the reply's bytes in flight than SSE2's 2 doubles per instruction.
#if defined(__x86_64__) && defined(__GNUC__)
#define STAMEN_FOLD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define STAMEN_FOLD_CLONES
#endif

template <bool first>
STAMEN_FOLD_CLONES bool fold_f32(double* sum, const std::byte* raw, size_t n, double w) {
  return fold_body<float, first>(sum, raw, n, w);
}
template <bool first>
STAMEN_FOLD_CLONES bool fold_f64(double* sum, const std::byte* raw, size_t n, double w) {
  return fold_body<double, first>(sum, raw, n, w);
}

template <class T, bool first>
bool fold(double* sum, const std::byte* raw, size_t n, double w) {
  if constexpr (std::is_same_v<T, float>) return fold_f32<first>(sum, raw, n, w);
  else if constexpr (std::is_same_v<T, double>) return fold_f64<first>(sum, raw, n, w);
  else return fold_body<T, first>(sum, raw, n, w);
}

// Calls f(T*) with the array's element type.
template <class F>
decltype(auto) with_type(dtype t, F&& f) {
  switch (t) {
    case dtype::float32: return f(static_cast<float*>(nullptr));
    case dtype::float64: return f(static_cast<double*>(nullptr));
    case dtype::int64: return f(static_cast<int64_t*>(nullptr));
    case dtype::int32: return f(static_cast<int32_t*>(nullptr));
    case dtype::int16: return f(static_cast<int16_t*>(nullptr));
    case dtype::int8: return f(static_cast<int8_t*>(nullptr));
    default: return f(static_cast<uint8_t*>(nullptr));  // uint8, bool
  }
}

bool fold_any(dtype t, double* sum, const std::byte* raw, size_t n, double w, bool first) {
  return with_type(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return first ? fold<T, true>(sum, raw, n, w) : fold<T, false>(sum, raw, n, w);
  });
}

bool averageable(dtype t) { return t != dtype::float16 && t != dtype::bfloat16; }

const metric_record* first_metrics(const message& reply) {
  for (auto& [name, rec] : reply.content())
    if (auto* m = std::get_if<metric_record>(&rec)) return m;
  return nullptr;
}

}  // namespace

expected<const array_record*> reply_arrays(const message& reply, const std::string& key) {
  auto* arrays = reply.content().arrays(key);
  if (arrays == nullptr) return fail(errc::invalid_message, "no ArrayRecord '" + key + "'");
  return arrays;
}

namespace {

// The first value of `key` among a reply's MetricRecords, or nothing.
const metric_value* find_metric(const message& reply, const std::string& key) {
  for (auto& [name, rec] : reply.content())
    if (auto* m = std::get_if<metric_record>(&rec))
      if (auto* v = m->get(key)) return v;
  return nullptr;
}

}  // namespace

expected<double> reply_metric(const message& reply, const std::string& key) {
  auto* v = find_metric(reply, key);
  if (v == nullptr) return fail(errc::invalid_message, "no MetricRecord holds '" + key + "'");
  double x;
  if (!metric_as_double(*v, x)) return fail(errc::invalid_message, "metric '" + key + "' is a list");
  if (!std::isfinite(x))
    return fail(errc::invalid_message, "metric '" + key + "' is " + format_double("%g", x));
  return x;
}

expected<double> reply_weight(const message& reply, const std::string& key) {
  auto* v = find_metric(reply, key);
  if (v == nullptr)
    return fail(errc::invalid_message, "no MetricRecord holds the weight '" + key + "'");
  double w;
  if (!metric_as_double(*v, w)) return fail(errc::invalid_message, "weight '" + key + "' is a list");
  if (!std::isfinite(w) || w <= 0)
    return fail(errc::invalid_message, "weight '" + key + "' must be positive, got " +
                                           format_double("%g", w));
  return w;
}

expected<void> check_layout(const array_record& arrays, const array_record& layout) {
  if (arrays.size() != layout.size())
    return fail(errc::shape_mismatch, "ArrayRecord has " + std::to_string(arrays.size()) +
                                          " arrays, the global model " +
                                          std::to_string(layout.size()));
  auto it = layout.begin();
  for (auto& [k, a] : arrays) {
    auto& [want_k, want] = *it++;
    if (k != want_k)
      return fail(errc::shape_mismatch, "array '" + k + "' where the global model has '" +
                                            want_k + "'");
    if (a.type() != want.type() || a.shape() != want.shape())
      return fail(errc::shape_mismatch, "array '" + k + "' is " + a.describe() +
                                            ", the global model's is " + want.describe());
    if (!averageable(a.type()))
      return fail(errc::shape_mismatch, "array '" + k + "': cannot average " +
                                            std::string{to_string(a.type())});
  }
  return {};
}

expected<void> check_finite(const array_record& arrays) {
  for (auto& [k, a] : arrays) {
    auto n = static_cast<size_t>(a.numel());
    bool ok = true;
    if (a.type() == dtype::float32)
      ok = block_is_finite(reinterpret_cast<const float*>(a.data()), n);
    else if (a.type() == dtype::float64)
      ok = block_is_finite(reinterpret_cast<const double*>(a.data()), n);
    if (!ok) return fail(errc::invalid_message, "array '" + k + "' holds NaN or Inf");
  }
  return {};
}

bool is_floating(dtype t) { return t == dtype::float32 || t == dtype::float64; }

void read_doubles(const array& a, size_t begin, size_t len, double* out) {
  with_type(a.type(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    auto* x = reinterpret_cast<const T*>(a.data()) + begin;
    for (size_t i = 0; i < len; ++i) out[i] = static_cast<double>(x[i]);
  });
}

std::vector<double> to_doubles(const array& a) {
  std::vector<double> out(static_cast<size_t>(a.numel()));
  read_doubles(a, 0, out.size(), out.data());
  return out;
}

namespace {

// values[i] / divisor in like's dtype, written straight into the new array
// (no scratch of doubles: for a 100M-float model that would be 800 MB).
array from_quotients(const array& like, const double* values, double divisor) {
  auto n = static_cast<size_t>(like.numel());
  return with_type(like.type(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    auto [buf, raw] = buffer::allocate_for_overwrite(n * sizeof(T));
    auto* y = reinterpret_cast<T*>(raw);
    for (size_t i = 0; i < n; ++i) {
      double v = values[i] / divisor;
      if constexpr (std::is_floating_point_v<T>) y[i] = static_cast<T>(v);
      else y[i] = static_cast<T>(std::llround(v));
    }
    return *array::make(like.type(), like.shape(), buf);
  });
}

}  // namespace

array from_doubles(const array& like, const double* values) {
  return from_quotients(like, values, 1.0);
}

double_buffer::double_buffer(size_t n, bool zeroed) : n_(n) {
  auto [buf, raw] = zeroed ? buffer::allocate(n * sizeof(double))
                           : buffer::allocate_for_overwrite(n * sizeof(double));
  buf_ = std::move(buf);
  data_ = reinterpret_cast<double*>(raw);
}

weighted_sum::weighted_sum(array_record layout) : layout_(std::move(layout)) {}

expected<void> weighted_sum::add(const array_record& arrays, double w) {
  if (layout_.empty() && sums_.empty()) layout_ = arrays;  // no layout given
  if (auto ok = check_layout(arrays, layout_); !ok) return ok;
  if (sums_.empty())
    for (auto& [k, a] : layout_) sums_.emplace_back(static_cast<size_t>(a.numel()), false);
  // The first record sets the sums; a refused first record leaves them unset
  // (count_ stays 0), so the next one sets them again.
  bool first = count_ == 0;
  size_t i = 0;
  for (auto& [k, a] : arrays) {
    if (!fold_any(a.type(), sums_[i].data(), a.data(), sums_[i].size(), w, first)) {
      // Re-folding with -w takes back what the earlier, finite arrays added.
      size_t j = 0;
      for (auto& [k2, a2] : arrays) {
        if (first || j == i) break;
        fold_any(a2.type(), sums_[j].data(), a2.data(), sums_[j].size(), -w, false);
        ++j;
      }
      return fail(errc::invalid_message, "array '" + k + "' holds NaN or Inf");
    }
    ++i;
  }
  total_ += w;
  ++count_;
  return {};
}

array_record weighted_sum::mean() const {
  array_record out;
  if (total_ <= 0) return out;
  size_t i = 0;
  for (auto& [k, a] : layout_) out.insert_or_assign(k, from_quotients(a, sums_[i++].data(), total_));
  return out;
}

void reply_metrics::add(const message& reply) {
  if (auto* m = first_metrics(reply)) records_.emplace_back(reply.meta().src_node_id, *m);
}

std::vector<metric_record> reply_metrics::in_node_order() const {
  auto sorted = records_;
  std::stable_sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<metric_record> out;
  out.reserve(sorted.size());
  for (auto& [node, m] : sorted) out.push_back(std::move(m));
  return out;
}

}  // namespace stamen
