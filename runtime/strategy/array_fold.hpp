#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "messages/buffer.hpp"
#include "messages/message.hpp"

namespace stamen {

// The building blocks FedAvg folds replies with, public so that a strategy
// written in an app validates and folds exactly as the built-in ones do.

/// The ArrayRecord `key` of a reply, or a failure naming the key.
expected<const array_record*> reply_arrays(const message& reply, const std::string& key);

/// The weight of a reply: `key` in any of its MetricRecords, as a positive,
/// finite number, or a failure saying what is wrong.
expected<double> reply_weight(const message& reply, const std::string& key);

/// A number from a reply's MetricRecords (the first that holds `key`).
expected<double> reply_metric(const message& reply, const std::string& key);

/// Checks that `arrays` has the keys, dtypes and shapes of `layout`, in the
/// same order, and that every dtype can be averaged (no float16/bfloat16).
expected<void> check_layout(const array_record& arrays, const array_record& layout);

/// Fails naming the first array that holds a NaN or an Inf.
expected<void> check_finite(const array_record& arrays);

/// Whether arithmetic on an array's values means anything (float32/float64);
/// integer arrays (counters) are averaged but never stepped, clipped or noised.
bool is_floating(dtype t);

/// An array's values as doubles (any numeric dtype).
std::vector<double> to_doubles(const array& a);
/// Reads `len` values from index `begin` of `a` as doubles into `out`.
void read_doubles(const array& a, size_t begin, size_t len, double* out);
/// An array of `like`'s dtype and shape holding `values` (numel of them),
/// rounded to nearest for integer dtypes.
array from_doubles(const array& like, const double* values);
/// As above, from a vector that holds at least `like`'s numel values.
inline array from_doubles(const array& like, const std::vector<double>& values) {
  return from_doubles(like, values.data());
}

/// Doubles for one array's running state, allocated like message buffers
/// (huge pages when large); zeroed unless `zeroed` is false. A copy shares
/// the doubles (the buffer is shared), it does not duplicate them.
class double_buffer {
 public:
  /// No doubles: size() is 0, data() null.
  double_buffer() = default;
  /// `n` doubles, zeroed, or left as the memory was when `zeroed` is false
  /// (for a caller that writes every one before reading).
  explicit double_buffer(size_t n, bool zeroed = true);
  double* data() { return data_; }  ///< The first double.
  const double* data() const { return data_; }  ///< The first double.
  size_t size() const { return n_; }  ///< Number of doubles.
  double& operator[](size_t i) { return data_[i]; }  ///< Double `i`, unchecked.
  double operator[](size_t i) const { return data_[i]; }  ///< Double `i`, unchecked.

 private:
  buffer buf_;
  double* data_ = nullptr;
  size_t n_ = 0;
};

/// Σ w·x over ArrayRecords, in double, one running sum per array: O(model)
/// memory however many records are added. What FedAvg folds replies into.
class weighted_sum {
 public:
  /// `layout` fixes keys, dtypes and shapes; empty: the first record added does.
  explicit weighted_sum(array_record layout = {});

  /// Adds w·arrays after checking the layout; a record with a NaN or an Inf
  /// is refused and leaves the sum as it was (all or nothing).
  expected<void> add(const array_record& arrays, double w);

  /// Σ w over the records added (the divisor of mean()).
  double total_weight() const { return total_; }
  /// How many records were added.
  size_t count() const { return count_; }
  /// The keys, dtypes and shapes every record must have (empty until fixed).
  const array_record& layout() const { return layout_; }

  /// Σ w·x / Σ w in the layout's dtypes (integers rounded to nearest).
  array_record mean() const;
  /// The running sum of array `i` (in layout order), once a record was added.
  const double_buffer& sum(size_t i) const { return sums_[i]; }

 private:
  array_record layout_;
  std::vector<double_buffer> sums_;
  double total_ = 0;
  size_t count_ = 0;
};

/// The MetricRecords of accepted replies, keyed by the node that sent them
/// and handed out in node order, not arrival order: the same replies then
/// give the same aggregate bits whatever order threads delivered them in.
class reply_metrics {
 public:
  /// Keeps the reply's first MetricRecord, if it has one.
  void add(const message& reply);
  /// Whether no reply with a MetricRecord was added.
  bool empty() const { return records_.empty(); }
  /// The kept records sorted by sender node id, as a `metric_aggregation_fn` takes them.
  std::vector<metric_record> in_node_order() const;

 private:
  std::vector<std::pair<uint64_t, metric_record>> records_;
};

}  // namespace stamen
