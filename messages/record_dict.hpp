#pragma once

#include <string>
#include <variant>

#include "messages/array_record.hpp"
#include "messages/config_record.hpp"
#include "messages/metric_record.hpp"
#include "messages/ordered_map.hpp"

namespace stamen {

/// One entry of a RecordDict.
using record = std::variant<array_record, config_record, metric_record>;

/// Flower's RecordDict: named records of any of the three kinds, in order.
class record_dict : public ordered_map<record> {
 public:
  using ordered_map::ordered_map;

  /// The record `name` if it exists and is of kind `T`, else nullptr.
  template <class T>
  const T* get_as(const std::string& name) const {
    auto* r = get(name);
    return r ? std::get_if<T>(r) : nullptr;
  }
  /// The record `name` if it exists and is of kind `T`, else nullptr.
  template <class T>
  T* get_as(const std::string& name) {
    auto* r = get(name);
    return r ? std::get_if<T>(r) : nullptr;
  }

  /// The ArrayRecord `name`, or nullptr if absent or of another kind (Flower's
  /// `content.array_records[name]`).
  const array_record* arrays(const std::string& name) const { return get_as<array_record>(name); }
  /// The ConfigRecord `name`, or nullptr if absent or of another kind.
  const config_record* configs(const std::string& name) const {
    return get_as<config_record>(name);
  }
  /// The MetricRecord `name`, or nullptr if absent or of another kind.
  const metric_record* metrics(const std::string& name) const {
    return get_as<metric_record>(name);
  }
};

}  // namespace stamen
