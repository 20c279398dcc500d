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
  /// An entry: key and value, as iteration yields it.
  using value_type = std::pair<std::string, V>;
  /// Walks entries in insertion order.
  using iterator = typename std::vector<value_type>::iterator;
  /// Read-only `iterator`.
  using const_iterator = typename std::vector<value_type>::const_iterator;

  /// An empty map.
  ordered_map() = default;
  /// Inserts `xs` in order; a repeated key keeps its first position and its last value.
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

  /// The entry of `key`, or `end()`; a linear search.
  iterator find(const std::string& key) {
    return std::find_if(begin(), end(), [&](auto& x) { return x.first == key; });
  }
  /// The entry of `key`, or `end()`; a linear search.
  const_iterator find(const std::string& key) const {
    return std::find_if(begin(), end(), [&](auto& x) { return x.first == key; });
  }
  /// Whether `key` has an entry.
  bool contains(const std::string& key) const { return find(key) != end(); }

  /// Returns a pointer to the value of `key`, or nullptr.
  const V* get(const std::string& key) const {
    auto i = find(key);
    return i == end() ? nullptr : &i->second;
  }
  /// Returns a pointer to the value of `key`, or nullptr.
  V* get(const std::string& key) {
    auto i = find(key);
    return i == end() ? nullptr : &i->second;
  }

  /// Removes the entry of `key`, keeping the others' order; false if there was none.
  bool erase(const std::string& key) {
    auto i = find(key);
    if (i == end()) return false;
    items_.erase(i);
    return true;
  }

  size_t size() const { return items_.size(); }  ///< Number of entries.
  bool empty() const { return items_.empty(); }  ///< Whether there are no entries.
  void reserve(size_t n) { items_.reserve(n); }  ///< Preallocates room for `n` entries.
  void clear() { items_.clear(); }  ///< Removes all entries.

  iterator begin() { return items_.begin(); }  ///< The first-inserted entry.
  iterator end() { return items_.end(); }  ///< Past the last entry.
  const_iterator begin() const { return items_.begin(); }  ///< The first-inserted entry.
  const_iterator end() const { return items_.end(); }  ///< Past the last entry.

  /// Equal when the same entries are in the same order (order matters, unlike Python's dict ==).
  friend bool operator==(const ordered_map& a, const ordered_map& b) {
    return a.items_ == b.items_;
  }
  /// Negation of `operator==`.
  friend bool operator!=(const ordered_map& a, const ordered_map& b) { return !(a == b); }

 private:
  std::vector<value_type> items_;
};

}  // namespace stamen
