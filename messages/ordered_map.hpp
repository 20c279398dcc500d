#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace stamen {

/// A string-keyed map that keeps insertion order, like Python's dict that
/// Flower's records are built on. Records hold a handful of entries, so a
/// linear search beats hashing and keeps iteration order free.
template <class V>
class ordered_map {
 public:
  using value_type = std::pair<std::string, V>;
  using iterator = typename std::vector<value_type>::iterator;
  using const_iterator = typename std::vector<value_type>::const_iterator;

  ordered_map() = default;
  ordered_map(std::initializer_list<value_type> xs) {
    for (auto& x : xs) insert_or_assign(x.first, x.second);
  }

  /// Inserts at the end, or replaces the value in place if `key` exists.
  V& insert_or_assign(std::string key, V value) {
    if (auto i = find(key); i != end()) {
      i->second = std::move(value);
      return i->second;
    }
    items_.emplace_back(std::move(key), std::move(value));
    return items_.back().second;
  }

  /// Like Python's `d[key]`: default-constructs a missing entry at the end.
  V& operator[](const std::string& key) {
    if (auto i = find(key); i != end()) return i->second;
    items_.emplace_back(key, V{});
    return items_.back().second;
  }

  iterator find(const std::string& key) {
    return std::find_if(begin(), end(), [&](auto& x) { return x.first == key; });
  }
  const_iterator find(const std::string& key) const {
    return std::find_if(begin(), end(), [&](auto& x) { return x.first == key; });
  }
  bool contains(const std::string& key) const { return find(key) != end(); }

  /// Returns a pointer to the value of `key`, or nullptr.
  const V* get(const std::string& key) const {
    auto i = find(key);
    return i == end() ? nullptr : &i->second;
  }
  V* get(const std::string& key) {
    auto i = find(key);
    return i == end() ? nullptr : &i->second;
  }

  bool erase(const std::string& key) {
    auto i = find(key);
    if (i == end()) return false;
    items_.erase(i);
    return true;
  }

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  void reserve(size_t n) { items_.reserve(n); }
  void clear() { items_.clear(); }

  iterator begin() { return items_.begin(); }
  iterator end() { return items_.end(); }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }

  friend bool operator==(const ordered_map& a, const ordered_map& b) {
    return a.items_ == b.items_;
  }
  friend bool operator!=(const ordered_map& a, const ordered_map& b) { return !(a == b); }

 private:
  std::vector<value_type> items_;
};

}  // namespace stamen
