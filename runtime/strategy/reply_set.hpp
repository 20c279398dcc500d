#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runtime/strategy/array_fold.hpp"
#include "runtime/strategy/strategy.hpp"

namespace stamen {

/// The accepted train replies of a round, kept whole, for aggregators that
/// need every update at once (median, trimmed mean, Krum, Bulyan). Replies
/// are validated as FedAvg validates them (keys, dtypes, shapes, weight,
/// NaN/Inf). Their arrays are kept as they arrived, slices of the received
/// bytes, never copied or widened: n replies hold n models, and the
/// coordinate-wise work reads them in blocks of doubles.
class reply_set {
 public:
  /// One kept reply.
  struct entry {
    uint64_t node = 0;                      ///< the sender's node id
    double weight = 0;                      ///< its `weighted_by_key` value, positive and finite
    array_record arrays;                    ///< its arrays, slices of the received bytes
    std::optional<metric_record> metrics;   ///< its first MetricRecord, if any
  };

  /// `layout`: the global arrays (empty: the first reply's fix the layout).
  reply_set(array_record layout, std::string arrayrecord_key, std::string weighted_by_key);

  /// Validates a reply and keeps it, or says why not.
  expected<void> accept(const message& reply);

  size_t size() const { return entries_.size(); }  ///< Number of kept replies, n.
  bool empty() const { return entries_.empty(); }  ///< Whether no reply was kept.
  /// Kept reply `i`, in arrival order until sort_by_node(); unchecked.
  const entry& operator[](size_t i) const { return entries_[i]; }
  /// Keys, dtypes and shapes of every kept reply.
  const array_record& layout() const { return layout_; }
  /// Orders entries by node id, so that results never depend on arrival order.
  void sort_by_node();

  /// Reads coordinates [begin, begin + len) of array `a` (layout order) of
  /// every kept reply into `out`, reply-major: out[k * len + j].
  void gather(size_t a, size_t begin, size_t len, double* out) const;

  /// Calls f(a, begin, len, block) over every array in blocks of coordinates,
  /// `block` reply-major as gather() fills it; f writes its result per
  /// coordinate into `result(a)[begin + j]`.
  template <class F>
  void for_each_block(F&& f) const {
    std::vector<double> block(entries_.size() * block_len);
    size_t a = 0;
    for (auto& [k, like] : layout_) {
      auto n = static_cast<size_t>(like.numel());
      for (size_t b = 0; b < n; b += block_len) {
        size_t len = std::min(block_len, n - b);
        gather(a, b, len, block.data());
        f(a, b, len, block.data());
      }
      ++a;
    }
  }

  /// An ArrayRecord of the layout's keys, dtypes and shapes whose every
  /// coordinate is f(column), column holding that coordinate of the entries
  /// listed in `which`, in that order (f may reorder it).
  template <class F>
  array_record coordinatewise(const std::vector<size_t>& which, F&& f) const {
    std::vector<std::vector<double>> out;
    for (auto& [k, a] : layout_) out.emplace_back(static_cast<size_t>(a.numel()));
    std::vector<double> column(which.size());
    for_each_block([&](size_t a, size_t begin, size_t len, const double* x) {
      for (size_t j = 0; j < len; ++j) {
        for (size_t t = 0; t < which.size(); ++t) column[t] = x[which[t] * len + j];
        out[a][begin + j] = f(column);
      }
    });
    array_record result;
    size_t a = 0;
    for (auto& [k, like] : layout_) result.insert_or_assign(k, from_doubles(like, out[a++]));
    return result;
  }

  /// The squared L2 distances between every pair of kept replies (n x n,
  /// row-major), over all their arrays.
  std::vector<double> squared_distances() const;

  /// The weighted mean of the entries listed (weights as sent).
  array_record weighted_mean(const std::vector<size_t>& which) const;

  /// Their MetricRecords in node order.
  std::vector<metric_record> metrics_of(const std::vector<size_t>& which) const;

  /// Every index, 0..size()-1.
  std::vector<size_t> all() const;

  /// Coordinates per block in gather() and for_each_block().
  static constexpr size_t block_len = 256;

 private:
  array_record layout_;
  std::string arrayrecord_key_;
  std::string weighted_by_key_;
  std::vector<entry> entries_;
};

/// A train aggregator for strategies that need every update at once: it
/// keeps the valid replies in a reply_set and hands them, in node order, to
/// `combine` when the round ends.
class collecting_aggregator : public train_aggregator {
 public:
  /// Turns the round's kept replies (non-empty, in node order) into its aggregate.
  using combine_fn = std::function<train_aggregate(const reply_set&)>;
  /// `set` empty, with the layout and keys to validate by; `combine` runs in finish().
  collecting_aggregator(reply_set set, combine_fn combine)
      : set_(std::move(set)), combine_(std::move(combine)) {}

  expected<void> accept(const message& reply) override { return set_.accept(reply); }
  train_aggregate finish() override {
    if (set_.empty()) return {};
    set_.sort_by_node();
    return combine_(set_);
  }

 private:
  reply_set set_;
  combine_fn combine_;
};

/// "keeps every accepted reply until the round ends: 0.25 MB each", the line
/// a non-streaming strategy's summary shows.
std::string kept_replies_line(const array_record& arrays);

}  // namespace stamen
