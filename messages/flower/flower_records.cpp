#include "messages/flower/flower_records.hpp"

#include <cstring>
#include <limits>

#include "messages/flower/fleet_conversion.hpp"

namespace stamen::flower {

namespace {

failure bad(std::string what) { return failure{errc::invalid_message, std::move(what)}; }

// NumPy's descr (type string) of each dtype Stamen has, little-endian as
// numpy.save writes on this machine; bfloat16 has none.
std::optional<std::string_view> npy_descr(dtype t) {
  switch (t) {
    case dtype::float32: return "<f4";
    case dtype::float64: return "<f8";
    case dtype::int64: return "<i8";
    case dtype::int32: return "<i4";
    case dtype::uint8: return "|u1";
    case dtype::bool_: return "|b1";
    case dtype::float16: return "<f2";
    case dtype::int8: return "|i1";
    case dtype::int16: return "<i2";
    case dtype::bfloat16: return std::nullopt;
  }
  return std::nullopt;
}

std::optional<dtype> dtype_of_descr(std::string_view d) {
  for (uint8_t i = 0; i < dtype_count; ++i) {
    auto t = static_cast<dtype>(i);
    auto ours = npy_descr(t);
    if (!ours) continue;
    if (d == *ours) return t;
    // One-byte types carry no byte order: '<u1' and '=u1' mean '|u1'.
    if (ours->front() == '|' && d.size() == 3 && (d[0] == '<' || d[0] == '=') && d.substr(1) == ours->substr(1))
      return t;
    if (d.size() == 3 && d[0] == '=' && d.substr(1) == ours->substr(1)) return t;  // native = little here
  }
  return std::nullopt;
}

// Python's repr of a shape tuple: "()", "(6,)", "(2, 3)".
std::string shape_repr(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// Parses the Python literal NumPy writes as a .npy header (a dict of
// 'descr', 'fortran_order' and 'shape'); tolerant of spacing, strict on keys.
struct npy_header {
  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
};

expected<npy_header> parse_npy_dict(std::string_view h) {
  npy_header out;
  bool seen_descr = false, seen_fortran = false, seen_shape = false;
  size_t i = 0;
  auto skip = [&] { while (i < h.size() && (h[i] == ' ' || h[i] == '\n' || h[i] == '\t')) ++i; };
  auto quoted = [&](std::string& v) -> bool {
    skip();
    if (i >= h.size() || (h[i] != '\'' && h[i] != '"')) return false;
    char q = h[i++];
    auto end = h.find(q, i);
    if (end == std::string_view::npos) return false;
    v = std::string(h.substr(i, end - i));
    i = end + 1;
    return true;
  };
  skip();
  if (i >= h.size() || h[i++] != '{') return bad(".npy header is not a dict");
  for (;;) {
    skip();
    if (i < h.size() && h[i] == '}') break;
    std::string key;
    if (!quoted(key)) return bad(".npy header: a key is not a string");
    skip();
    if (i >= h.size() || h[i++] != ':') return bad(".npy header: no ':' after '" + key + "'");
    skip();
    if (key == "descr") {
      if (!quoted(out.descr)) return bad(".npy header: descr is not a string (structured dtypes are not supported)");
      seen_descr = true;
    } else if (key == "fortran_order") {
      if (h.substr(i, 4) == "True") out.fortran = true, i += 4;
      else if (h.substr(i, 5) == "False") out.fortran = false, i += 5;
      else return bad(".npy header: fortran_order is not True or False");
      seen_fortran = true;
    } else if (key == "shape") {
      if (i >= h.size() || h[i++] != '(') return bad(".npy header: shape is not a tuple");
      for (;;) {
        skip();
        if (i < h.size() && h[i] == ')') { ++i; break; }
        size_t start = i;
        while (i < h.size() && h[i] >= '0' && h[i] <= '9') ++i;
        if (start == i || i - start > 18) return bad(".npy header: a dimension is not a number");
        out.shape.push_back(std::stoll(std::string(h.substr(start, i - start))));
        skip();
        if (i < h.size() && h[i] == ',') ++i;
      }
      seen_shape = true;
    } else {
      return bad(".npy header: unexpected key '" + key + "'");
    }
    skip();
    if (i < h.size() && h[i] == ',') ++i;
  }
  if (!seen_descr || !seen_fortran || !seen_shape)
    return bad(".npy header lacks descr, fortran_order or shape");
  return out;
}

}  // namespace

expected<flower_array> to_flower(const array& a) {
  auto descr = npy_descr(a.type());
  if (!descr) return bad("dtype " + std::string(to_string(a.type())) + " has no NumPy equivalent");
  // As numpy.format.write_array_header_1_0 (NumPy 1.24): keys sorted, the
  // header padded with spaces, room left for a growing first axis, then a
  // newline, so that the data starts at a multiple of 64 bytes.
  std::string header = "{'descr': '" + std::string(*descr) + "', 'fortran_order': False, 'shape': " +
                       shape_repr(a.shape()) + ", }";
  constexpr size_t growth_axis_max_digits = 21;
  if (!a.shape().empty()) {
    auto digits = std::to_string(a.shape().front()).size();
    if (digits < growth_axis_max_digits) header.append(growth_axis_max_digits - digits, ' ');
  }
  constexpr size_t prefix = 6 + 2 + 2;  // magic, version, uint16 header length
  // NumPy pads a full 64 bytes when the header is already aligned.
  size_t pad = 64 - (prefix + header.size() + 1) % 64;
  header.append(pad, ' ');
  header += '\n';
  if (header.size() > 0xffff) return bad("array has too many dimensions for a .npy 1.0 header");
  flower_array out;
  out.dtype = std::string(to_string(a.type()));
  out.shape = a.shape();
  out.stype = std::string(numpy_stype);
  out.data.reserve(prefix + header.size() + a.nbytes());
  out.data.append("\x93NUMPY\x01\x00", 8);
  out.data.push_back(static_cast<char>(header.size() & 0xff));
  out.data.push_back(static_cast<char>(header.size() >> 8));
  out.data += header;
  out.data.append(reinterpret_cast<const char*>(a.data()), a.nbytes());
  return out;
}

expected<array> from_flower(const flower_array& a) {
  if (a.stype != numpy_stype)
    return bad("stype '" + a.stype + "' is not supported (only '" + std::string(numpy_stype) + "')");
  std::string_view d = a.data;
  if (d.size() < 10 || d.substr(0, 6) != std::string_view("\x93NUMPY", 6)) return bad("data is not a .npy file");
  auto major = static_cast<uint8_t>(d[6]);
  size_t hlen = 0, start = 0;
  if (major == 1) {
    hlen = static_cast<uint8_t>(d[8]) | (size_t{static_cast<uint8_t>(d[9])} << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (d.size() < 12) return bad(".npy file is truncated");
    for (int k = 3; k >= 0; --k) hlen = (hlen << 8) | static_cast<uint8_t>(d[8 + k]);
    start = 12;
  } else {
    return bad(".npy format version " + std::to_string(major) + " is not supported");
  }
  if (d.size() < start + hlen) return bad(".npy header is truncated");
  auto header = parse_npy_dict(d.substr(start, hlen));
  if (!header) return header.error();
  auto type = dtype_of_descr(header->descr);
  if (!type) return bad("NumPy dtype '" + header->descr + "' is not supported (big-endian, complex, object or string)");
  if (header->fortran && header->shape.size() > 1) return bad("Fortran-ordered arrays are not supported");
  if (a.dtype != to_string(*type))
    return bad("dtype '" + a.dtype + "' disagrees with the .npy data's '" + header->descr + "'");
  if (a.shape != header->shape)
    return bad("shape " + shape_repr(a.shape) + " disagrees with the .npy data's " + shape_repr(header->shape));
  auto body = d.substr(start + hlen);
  auto made = array::make(*type, header->shape, buffer::copy_of(body.data(), body.size()));
  if (!made) return bad(made.error().what);
  return made;
}

namespace {

template <class List, class T>
void fill(List* list, const std::vector<T>& xs) {
  for (const auto& x : xs) list->add_vals(x);
}

}  // namespace

expected<std::string> config_record_body(const config_record& c) {
  flwr::proto::ConfigRecord rec;
  for (const auto& [key, value] : c) {
    auto* item = rec.add_items();
    item->set_key(key);
    auto* v = item->mutable_value();
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, int64_t>) v->set_sint64(x);
          else if constexpr (std::is_same_v<T, double>) v->set_double_(x);
          else if constexpr (std::is_same_v<T, bool>) v->set_bool_(x);
          else if constexpr (std::is_same_v<T, std::string>) v->set_string(x);
          else if constexpr (std::is_same_v<T, bytes>) v->set_bytes(std::string(x.begin(), x.end()));
          else if constexpr (std::is_same_v<T, std::vector<int64_t>>) fill(v->mutable_sint_list(), x);
          else if constexpr (std::is_same_v<T, std::vector<double>>) fill(v->mutable_double_list(), x);
          else if constexpr (std::is_same_v<T, std::vector<bool>>) {
            for (bool b : x) v->mutable_bool_list()->add_vals(b);
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) fill(v->mutable_string_list(), x);
          else if constexpr (std::is_same_v<T, std::vector<bytes>>) {
            for (const auto& b : x) v->mutable_bytes_list()->add_vals(std::string(b.begin(), b.end()));
          }
        },
        value);
  }
  return rec.SerializeAsString();
}

namespace {

expected<int64_t> signed_of(uint64_t x, const std::string& key) {
  if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return bad("'" + key + "': unsigned value " + std::to_string(x) + " is past int64's range");
  return static_cast<int64_t>(x);
}

expected<std::vector<int64_t>> signed_of(const flwr::proto::UintList& xs, const std::string& key) {
  std::vector<int64_t> out;
  for (auto x : xs.vals()) {
    auto s = signed_of(x, key);
    if (!s) return s.error();
    out.push_back(*s);
  }
  return out;
}

}  // namespace

expected<config_record> parse_config_record_body(std::string_view body) {
  flwr::proto::ConfigRecord rec;
  if (!rec.ParseFromArray(body.data(), static_cast<int>(body.size()))) return bad("ConfigRecord body does not parse");
  config_record out;
  for (const auto& item : rec.items()) {
    const auto& key = item.key();
    const auto& v = item.value();
    using V = flwr::proto::ConfigRecordValue;
    switch (v.value_case()) {
      case V::kDouble: out.insert_or_assign(key, v.double_()); break;
      case V::kSint64: out.insert_or_assign(key, v.sint64()); break;
      case V::kUint64: {
        auto s = signed_of(v.uint64(), key);
        if (!s) return s.error();
        out.insert_or_assign(key, *s);
        break;
      }
      case V::kBool: out.insert_or_assign(key, v.bool_()); break;
      case V::kString: out.insert_or_assign(key, v.string()); break;
      case V::kBytes: out.insert_or_assign(key, bytes(v.bytes().begin(), v.bytes().end())); break;
      case V::kDoubleList: out.insert_or_assign(key, std::vector<double>(v.double_list().vals().begin(), v.double_list().vals().end())); break;
      case V::kSintList: out.insert_or_assign(key, std::vector<int64_t>(v.sint_list().vals().begin(), v.sint_list().vals().end())); break;
      case V::kUintList: {
        auto xs = signed_of(v.uint_list(), key);
        if (!xs) return xs.error();
        out.insert_or_assign(key, std::move(*xs));
        break;
      }
      case V::kBoolList: out.insert_or_assign(key, std::vector<bool>(v.bool_list().vals().begin(), v.bool_list().vals().end())); break;
      case V::kStringList: out.insert_or_assign(key, std::vector<std::string>(v.string_list().vals().begin(), v.string_list().vals().end())); break;
      case V::kBytesList: {
        std::vector<bytes> xs;
        for (const auto& b : v.bytes_list().vals()) xs.emplace_back(b.begin(), b.end());
        out.insert_or_assign(key, std::move(xs));
        break;
      }
      case V::VALUE_NOT_SET: return bad("'" + key + "': ConfigRecord value is not set");
    }
  }
  return out;
}

expected<std::string> metric_record_body(const metric_record& m) {
  flwr::proto::MetricRecord rec;
  for (const auto& [key, value] : m) {
    auto* item = rec.add_items();
    item->set_key(key);
    auto* v = item->mutable_value();
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, int64_t>) v->set_sint64(x);
          else if constexpr (std::is_same_v<T, double>) v->set_double_(x);
          else if constexpr (std::is_same_v<T, std::vector<int64_t>>) fill(v->mutable_sint_list(), x);
          else fill(v->mutable_double_list(), x);
        },
        value);
  }
  return rec.SerializeAsString();
}

expected<metric_record> parse_metric_record_body(std::string_view body) {
  flwr::proto::MetricRecord rec;
  if (!rec.ParseFromArray(body.data(), static_cast<int>(body.size()))) return bad("MetricRecord body does not parse");
  metric_record out;
  for (const auto& item : rec.items()) {
    const auto& key = item.key();
    const auto& v = item.value();
    using V = flwr::proto::MetricRecordValue;
    switch (v.value_case()) {
      case V::kDouble: out.insert_or_assign(key, v.double_()); break;
      case V::kSint64: out.insert_or_assign(key, v.sint64()); break;
      case V::kUint64: {
        auto s = signed_of(v.uint64(), key);
        if (!s) return s.error();
        out.insert_or_assign(key, *s);
        break;
      }
      case V::kDoubleList: out.insert_or_assign(key, std::vector<double>(v.double_list().vals().begin(), v.double_list().vals().end())); break;
      case V::kSintList: out.insert_or_assign(key, std::vector<int64_t>(v.sint_list().vals().begin(), v.sint_list().vals().end())); break;
      case V::kUintList: {
        auto xs = signed_of(v.uint_list(), key);
        if (!xs) return xs.error();
        out.insert_or_assign(key, std::move(*xs));
        break;
      }
      case V::VALUE_NOT_SET: return bad("'" + key + "': MetricRecord value is not set");
    }
  }
  return out;
}

std::string message_body(const metadata& meta, const message_error* err) {
  flwr::proto::Message msg;
  to_proto(meta, msg.mutable_metadata());
  // The id is the object's own hash, so it cannot be inside it.
  msg.mutable_metadata()->clear_message_id();
  if (err) {
    msg.mutable_error()->set_code(err->code);
    msg.mutable_error()->set_reason(err->reason);
  }
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  msg.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

expected<message_head> parse_message_body(std::string_view body) {
  flwr::proto::Message msg;
  if (!msg.ParseFromArray(body.data(), static_cast<int>(body.size()))) return bad("Message body does not parse");
  if (msg.has_content()) return bad("Message body carries content inline (it must be a child object)");
  message_head out;
  out.meta = from_proto(msg.metadata());
  if (msg.has_error()) out.error = message_error{msg.error().code(), msg.error().reason()};
  return out;
}

}  // namespace stamen::flower
