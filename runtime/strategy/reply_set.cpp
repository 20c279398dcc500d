#include "runtime/strategy/reply_set.hpp"

#include <algorithm>

#include "runtime/format.hpp"

namespace stamen {

reply_set::reply_set(array_record layout, std::string arrayrecord_key, std::string weighted_by_key)
    : layout_(std::move(layout)),
      arrayrecord_key_(std::move(arrayrecord_key)),
      weighted_by_key_(std::move(weighted_by_key)) {}

expected<void> reply_set::accept(const message& reply) {
  auto arrays = reply_arrays(reply, arrayrecord_key_);
  if (!arrays) return arrays.error();
  auto weight = reply_weight(reply, weighted_by_key_);
  if (!weight) return weight.error();
  if (layout_.empty() && entries_.empty()) layout_ = **arrays;
  if (auto ok = check_layout(**arrays, layout_); !ok) return ok;
  if (auto ok = check_finite(**arrays); !ok) return ok;
  entry e{reply.meta().src_node_id, *weight, **arrays, std::nullopt};
  for (auto& [name, rec] : reply.content())
    if (auto* m = std::get_if<metric_record>(&rec)) {
      e.metrics = *m;
      break;
    }
  entries_.push_back(std::move(e));
  return {};
}

void reply_set::sort_by_node() {
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const entry& a, const entry& b) { return a.node < b.node; });
}

void reply_set::gather(size_t a, size_t begin, size_t len, double* out) const {
  for (size_t k = 0; k < entries_.size(); ++k) {
    auto& arr = std::next(entries_[k].arrays.begin(), static_cast<std::ptrdiff_t>(a))->second;
    read_doubles(arr, begin, len, out + k * len);
  }
}

std::vector<double> reply_set::squared_distances() const {
  size_t n = entries_.size();
  std::vector<double> d(n * n, 0.0);
  for_each_block([&](size_t, size_t, size_t len, const double* x) {
    for (size_t i = 0; i < n; ++i)
      for (size_t j = i + 1; j < n; ++j) {
        double s = 0;
        const double* xi = x + i * len;
        const double* xj = x + j * len;
        for (size_t c = 0; c < len; ++c) s += (xi[c] - xj[c]) * (xi[c] - xj[c]);
        d[i * n + j] += s;
      }
  });
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < i; ++j) d[i * n + j] = d[j * n + i];
  return d;
}

array_record reply_set::weighted_mean(const std::vector<size_t>& which) const {
  weighted_sum sum(layout_);
  for (auto i : which) (void)sum.add(entries_[i].arrays, entries_[i].weight);  // checked on accept
  return sum.mean();
}

std::vector<metric_record> reply_set::metrics_of(const std::vector<size_t>& which) const {
  std::vector<std::pair<uint64_t, const metric_record*>> ms;
  for (auto i : which)
    if (entries_[i].metrics) ms.emplace_back(entries_[i].node, &*entries_[i].metrics);
  std::stable_sort(ms.begin(), ms.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<metric_record> out;
  for (auto& [node, m] : ms) out.push_back(*m);
  return out;
}

std::vector<size_t> reply_set::all() const {
  std::vector<size_t> out(entries_.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = i;
  return out;
}

std::string kept_replies_line(const array_record& arrays) {
  return "keeps every accepted reply until the round ends: " +
         format_double("%.2f", static_cast<double>(arrays.count_bytes()) / 1e6) +
         " MB per reply";
}

}  // namespace stamen
