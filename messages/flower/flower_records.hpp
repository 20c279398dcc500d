#pragma once

// Stamen's records and metadata in Flower's serialized forms: the protobuf
// bodies of ConfigRecord, MetricRecord and Message objects, and Flower's
// Array (stype "numpy.ndarray": the bytes of numpy.save). Every failure
// names the key it is about.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/array.hpp"
#include "messages/config_record.hpp"
#include "messages/expected.hpp"
#include "messages/message.hpp"
#include "messages/metric_record.hpp"

namespace stamen::flower {

/// Flower's SType.NUMPY: the only serialization Stamen reads and writes.
inline constexpr std::string_view numpy_stype = "numpy.ndarray";

/// A Flower Array's four fields.
struct flower_array {
  std::string dtype;           ///< NumPy's name: "float32", "int64", "bool", ...
  std::vector<int64_t> shape;  ///< outermost first; empty for a scalar
  std::string stype;           ///< how `data` was made: numpy_stype for NumPy's .npy
  std::string data;            ///< for numpy_stype, a whole .npy file
};

/// `a` as Flower's Array: its dtype's NumPy name, shape, numpy_stype and the
/// bytes numpy.save writes (format 1.0, header padded to 64 bytes). Fails on
/// bfloat16, which NumPy has no dtype for.
expected<flower_array> to_flower(const array& a);

/// A Flower Array as Stamen's: refuses another stype, a .npy whose dtype,
/// byte order, Fortran order or shape Stamen cannot take or that disagrees
/// with the Array's own fields, and a truncated file.
expected<array> from_flower(const flower_array& a);

/// The protobuf ConfigRecord body of `c` (ints as sint64, as Flower writes them).
expected<std::string> config_record_body(const config_record& c);
/// A ConfigRecord body as Stamen's; a uint64 past int64's range fails naming its key.
expected<config_record> parse_config_record_body(std::string_view body);

/// The protobuf MetricRecord body of `m`.
expected<std::string> metric_record_body(const metric_record& m);
/// A MetricRecord body as Stamen's.
expected<metric_record> parse_metric_record_body(std::string_view body);

/// The protobuf Message body of a Message object: metadata with message_id
/// blanked, and the error if any.
std::string message_body(const metadata& meta, const message_error* err);

/// A Message body: its metadata and, when it carries one, its error.
struct message_head {
  metadata meta;                       ///< message_id empty, as in every Message object
  std::optional<message_error> error;  ///< set for an error reply
};
expected<message_head> parse_message_body(std::string_view body);

}  // namespace stamen::flower
