#include "messages/codec.hpp"

// Decoding: Cap'n Proto's reader over a checked buffer, into the message
// layer's value types, with the path to the first problem in every error.

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "message.capnp.h"  // generated; stays inside the codec
#include "messages/codec_framing.hpp"

namespace stamen {

namespace schema = stamen_schema;
using detail::max_segments;
using detail::read_le32;
using detail::round8;

namespace {

// Cap'n Proto's list iterators are not standard iterators, so copy by hand.
template <class T, class List>
std::vector<T> to_vector(List in) {
  std::vector<T> out;
  out.reserve(in.size());
  for (auto x : in) out.push_back(x);
  return out;
}

// Decoding reports the first problem with the path to it, e.g.
// "content['arrays']['fc1.weight']: float32 array of shape [120, 256] needs ...".
struct decoder {
  const buffer& buf;

  std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

  expected<array> arr(schema::Array::Reader in, const std::string& where) {
    auto code = in.getDtype();
    if (code >= dtype_count)
      return fail(errc::shape_mismatch, where + ": unknown dtype code " + std::to_string(code));
    auto type = static_cast<dtype>(code);
    auto shape = to_vector<int64_t>(in.getShape());
    auto chunks = in.getChunks();
    uint64_t total = 0;
    bool contiguous = true;
    const capnp::byte* next = nullptr;
    for (auto c : chunks) {
      if (next != nullptr && c.begin() != next) contiguous = false;
      next = c.end();
      total += c.size();
    }
    if (total != in.getByteLength())
      return fail(errc::shape_mismatch, where + ": chunks hold " + std::to_string(total) +
                                            " bytes but byteLength says " +
                                            std::to_string(in.getByteLength()));
    buffer bytes;
    if (chunks.size() == 0) {
      bytes = buffer{};
    } else if (contiguous) {
      auto* first = reinterpret_cast<const std::byte*>(chunks[0].begin());
      bytes = buf.slice(static_cast<size_t>(first - buf.data()), total);
    } else {
      // Only a message built in several segments gets here (never one of ours).
      auto [copy, out] = buffer::allocate(total);
      for (auto c : chunks) {
        std::memcpy(out, c.begin(), c.size());
        out += c.size();
      }
      bytes = std::move(copy);
    }
    auto result = array::make(type, std::move(shape), std::move(bytes));
    if (!result) return fail(result.error().code, where + ": " + result.error().what);
    return result;
  }

  expected<config_value> config(schema::ConfigRecord::Entry::Value::Reader v,
                                const std::string& where) {
    using V = schema::ConfigRecord::Entry::Value;
    switch (v.which()) {
      case V::INT64: return config_value{v.getInt64()};
      case V::FLOAT64: return config_value{v.getFloat64()};
      case V::BOOL: return config_value{v.getBool()};
      case V::STRING: return config_value{str(v.getString())};
      case V::BYTES: {
        auto d = v.getBytes();
        return config_value{bytes(d.begin(), d.end())};
      }
      case V::INT64_LIST: return config_value{to_vector<int64_t>(v.getInt64List())};
      case V::FLOAT64_LIST: return config_value{to_vector<double>(v.getFloat64List())};
      case V::BOOL_LIST: return config_value{to_vector<bool>(v.getBoolList())};
      case V::STRING_LIST: {
        std::vector<std::string> out;
        for (auto t : v.getStringList()) out.push_back(str(t));
        return config_value{std::move(out)};
      }
      case V::BYTES_LIST: {
        std::vector<bytes> out;
        for (auto d : v.getBytesList()) out.emplace_back(d.begin(), d.end());
        return config_value{std::move(out)};
      }
    }
    return fail(errc::decode_failed, where + ": unknown config value kind " +
                                         std::to_string(static_cast<int>(v.which())));
  }

  expected<metric_value> metric(schema::MetricRecord::Entry::Value::Reader v,
                                const std::string& where) {
    using V = schema::MetricRecord::Entry::Value;
    switch (v.which()) {
      case V::INT64: return metric_value{v.getInt64()};
      case V::FLOAT64: return metric_value{v.getFloat64()};
      case V::INT64_LIST: return metric_value{to_vector<int64_t>(v.getInt64List())};
      case V::FLOAT64_LIST: return metric_value{to_vector<double>(v.getFloat64List())};
    }
    return fail(errc::decode_failed, where + ": unknown metric value kind " +
                                         std::to_string(static_cast<int>(v.which())));
  }

  // Decodes the entries of one record; `convert` turns an entry into a value.
  template <class Map, class Entries, class Convert>
  expected<Map> entries(Entries in, const std::string& where, Convert convert) {
    Map out;
    out.reserve(in.size());
    for (auto e : in) {
      auto name = str(e.getName());
      auto path = where + "['" + name + "']";
      if (out.contains(name))
        return fail(errc::invalid_message, path + ": duplicate key");
      auto v = convert(e, path);
      if (!v) return v.error();
      out.insert_or_assign(std::move(name), std::move(*v));
    }
    return out;
  }

  template <class Map>
  static expected<record> as_record(expected<Map> r) {
    if (!r) return r.error();
    return record{std::move(*r)};
  }

  expected<record_dict> content(schema::RecordDict::Reader in) {
    using E = schema::RecordDict::Entry;
    return entries<record_dict>(
        in.getEntries(), "content", [&](E::Reader e, const std::string& path) -> expected<record> {
          switch (e.which()) {
            case E::ARRAYS:
              return as_record(entries<array_record>(
                  e.getArrays().getEntries(), path,
                  [&](schema::ArrayRecord::Entry::Reader x, const std::string& p) {
                    return arr(x.getArray(), p);
                  }));
            case E::CONFIGS:
              return as_record(entries<config_record>(
                  e.getConfigs().getEntries(), path,
                  [&](schema::ConfigRecord::Entry::Reader x, const std::string& p) {
                    return config(x.getValue(), p);
                  }));
            case E::METRICS:
              return as_record(entries<metric_record>(
                  e.getMetrics().getEntries(), path,
                  [&](schema::MetricRecord::Entry::Reader x, const std::string& p) {
                    return metric(x.getValue(), p);
                  }));
          }
          return fail(errc::decode_failed, path + ": unknown record kind");
        });
  }

  // Decodes a message; `external` reads its content when that travels as a
  // separate part (see encode_header).
  expected<message> msg(schema::Message::Reader in,
                        const std::function<expected<record_dict>()>& external = nullptr) {
    auto md_in = in.getMetadata();
    metadata md;
    md.run_id = md_in.getRunId();
    md.message_id = str(md_in.getMessageId());
    md.src_node_id = md_in.getSrcNodeId();
    md.dst_node_id = md_in.getDstNodeId();
    md.reply_to_message_id = str(md_in.getReplyToMessageId());
    md.group_id = str(md_in.getGroupId());
    md.created_at = md_in.getCreatedAt();
    md.ttl = md_in.getTtl();
    md.message_type = str(md_in.getMessageType());
    if (auto ok = validate_message_type(md.message_type); !ok)
      return fail(ok.error().code, "metadata: " + ok.error().what);
    bool has_content = in.hasContent();
    bool has_error = in.hasError();
    bool has_external = static_cast<bool>(external);
    if (has_content && has_external)
      return fail(errc::invalid_message, "message has content in its header and as a separate part");
    if ((has_content || has_external) && has_error)
      return fail(errc::invalid_message, "message has both content and an error");
    if (!has_content && !has_error && !has_external)
      return fail(errc::invalid_message, "message has neither content nor an error");
    if (has_error) {
      auto e = in.getError();
      return message{std::move(md), message_error{e.getCode(), str(e.getReason())}};
    }
    auto c = has_external ? external() : content(in.getContent());
    if (!c) return c.error();
    return message{std::move(md), std::move(*c)};
  }
};

// Checks the framing of `buf` and hands a reader of it to `fn(buf, reader)`.
template <class T, class Fn>
expected<T> read(const buffer& buf, const codec_options& opts, Fn fn) {
  auto size = buf.size();
  if (size > opts.max_message_size)
    return fail(errc::message_too_large,
                "message of " + std::to_string(size) + " bytes exceeds the maximum of " +
                    std::to_string(opts.max_message_size) + " bytes (codec_options)");
  if (size < 16 || size % 8 != 0)
    return fail(errc::decode_failed, "message of " + std::to_string(size) +
                                         " bytes is truncated or not made of 8-byte words");
  if (reinterpret_cast<uintptr_t>(buf.data()) % alignof(capnp::word) != 0)
    return read<T>(buffer::copy_of(buf.data(), size), opts, fn);  // realign once
  // Check the segment table ourselves: clearer errors, and no trust in a
  // forged count before anything is allocated for it.
  uint64_t segment_count = uint64_t{read_le32(buf.data())} + 1;
  if (segment_count > max_segments)
    return fail(errc::decode_failed, "segment table declares " + std::to_string(segment_count) +
                                         " segments, more than the " +
                                         std::to_string(max_segments) + " allowed");
  uint64_t table_bytes = round8(4 * (segment_count + 1));
  if (table_bytes > size)
    return fail(errc::decode_failed, "truncated segment table");
  uint64_t declared = table_bytes;
  for (uint64_t i = 0; i < segment_count; ++i)
    declared += uint64_t{read_le32(buf.data() + 4 * (i + 1))} * 8;
  if (declared > opts.max_message_size)
    return fail(errc::message_too_large,
                "segment table declares " + std::to_string(declared) +
                    " bytes, over the maximum message size of " +
                    std::to_string(opts.max_message_size) + " bytes (codec_options)");
  if (declared != size)
    return fail(errc::decode_failed, "segment table declares " + std::to_string(declared) +
                                         " bytes but the message has " + std::to_string(size) +
                                         (declared > size ? " (truncated)" : " (trailing bytes)"));
  try {
    capnp::ReaderOptions ro;
    // The limit counts words as they are read, and a few (list headers,
    // pointers) are counted more than once; twice the message size still
    // bounds the work a forged message can cause.
    ro.traversalLimitInWords = opts.max_message_size / 8 * 2 + 1024;
    ro.nestingLimit = opts.nesting_limit;
    capnp::FlatArrayMessageReader reader(
        kj::arrayPtr(reinterpret_cast<const capnp::word*>(buf.data()), size / 8), ro);
    return fn(buf, reader);
  } catch (const kj::Exception& e) {
    return fail(errc::decode_failed, e.getDescription().cStr());
  }
}

}  // namespace

expected<message> decode(const buffer& buf, const codec_options& opts) {
  return read<message>(buf, opts, [](const buffer& b, capnp::MessageReader& r) {
    return decoder{b}.msg(r.getRoot<schema::Message>());
  });
}

expected<message> decode(const buffer& header, const buffer& content, const codec_options& opts) {
  if (content.empty()) return decode(header, opts);
  return read<message>(header, opts, [&](const buffer& hb, capnp::MessageReader& hr) {
    auto external = [&]() {
      return read<record_dict>(content, opts, [](const buffer& cb, capnp::MessageReader& cr) {
        return decoder{cb}.content(cr.getRoot<schema::RecordDict>());
      });
    };
    return decoder{hb}.msg(hr.getRoot<schema::Message>(), external);
  });
}

}  // namespace stamen
