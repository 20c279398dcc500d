#include "messages/codec.hpp"

#include <capnp/message.h>
#include <capnp/orphan.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <algorithm>
#include <array>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "message.capnp.h"  // generated; stays inside the codec
#include "messages/codec_framing.hpp"

namespace stamen {

namespace schema = stamen_schema;
using detail::max_segment_words;
using detail::max_segments;
using detail::round8;

namespace {


// Arrays of at least this many bytes are not copied while the message is
// built: their chunks are referenced as segments of their own
// (referenceExternalData) and copied once, into the flat result, which then
// needs no zeroing first. Smaller ones are copied into the first segment.
constexpr size_t external_min_bytes = size_t{64} << 10;
// Segments that referenced chunks may add, leaving room under max_segments.
constexpr size_t external_max_segments = 448;

// Which arrays are referenced. The size estimate and the encoder each run one
// over the same arrays in the same order, so they agree.
struct external_plan {
  size_t chunk_size;
  size_t segments = 0;

  bool take(const array& a) {
    if (a.nbytes() < external_min_bytes || reinterpret_cast<uintptr_t>(a.data()) % 8 != 0)
      return false;
    size_t chunks = (a.nbytes() + chunk_size - 1) / chunk_size;
    if (segments + chunks > external_max_segments) return false;
    segments += chunks;
    return true;
  }
};

// A referenced chunk: where its bytes are and how many (its segment is
// rounded up to whole words, which the chunk may not fill).
struct external_chunk {
  buffer bytes;  ///< a slice of the array's own buffer
};

// --- size estimate ----------------------------------------------------------

// An upper bound on the encoded size, so that everything but the referenced
// arrays fits the first segment and every array can be read back contiguous.
// Overshooting costs only untouched virtual memory for large messages.
struct estimator {
  explicit estimator(size_t chunk) : plan{chunk} {}
  external_plan plan;
  size_t n = 1024;        ///< the whole message
  size_t external_n = 0;  ///< of which referenced arrays' bytes (not in the first segment)

  void text(const std::string& s) { n += round8(s.size() + 1) + 16; }

  void config(const config_value& v) {
    n += 64;
    std::visit(
        [&](auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            text(x);
          } else if constexpr (std::is_same_v<T, bytes>) {
            n += round8(x.size()) + 16;
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            n += 8 * x.size() + 16;
            for (auto& s : x) text(s);
          } else if constexpr (std::is_same_v<T, std::vector<bytes>>) {
            n += 8 * x.size() + 16;
            for (auto& b : x) n += round8(b.size()) + 16;
          } else if constexpr (std::is_same_v<T, std::vector<bool>>) {
            n += round8((x.size() + 7) / 8) + 16;
          } else if constexpr (!std::is_arithmetic_v<T>) {
            n += 8 * x.size() + 16;
          }
        },
        v);
  }

  void metric(const metric_value& v) {
    n += 64;
    if (auto* a = std::get_if<std::vector<int64_t>>(&v)) n += 8 * a->size() + 16;
    if (auto* b = std::get_if<std::vector<double>>(&v)) n += 8 * b->size() + 16;
  }

  void arr(const array& a) {
    size_t chunks = a.nbytes() == 0 ? 0 : (a.nbytes() + plan.chunk_size - 1) / plan.chunk_size;
    // A referenced chunk's pointer lands in the first segment through a
    // two-word pad: 32 bytes a chunk covers both cases.
    n += 128 + 8 * a.shape().size() + 32 * chunks + 16;
    if (plan.take(a)) external_n += round8(a.nbytes());
    n += round8(a.nbytes());
  }

  void msg(const message& m) {
    auto& md = m.meta();
    text(md.message_id);
    text(md.reply_to_message_id);
    text(md.group_id);
    text(md.message_type);
    if (m.has_error()) text(m.error().reason);
  }

  void content(const record_dict& c) {
    for (auto& [name, rec] : c) {
      n += 64;
      text(name);
      std::visit(
          [&](auto& r) {
            for (auto& [k, v] : r) {
              n += 64;
              text(k);
              using R = std::decay_t<decltype(r)>;
              if constexpr (std::is_same_v<R, array_record>)
                arr(v);
              else if constexpr (std::is_same_v<R, config_record>)
                config(v);
              else
                metric(v);
            }
          },
          rec);
    }
  }
};

// --- encoding ---------------------------------------------------------------

// Builds into memory we own, so the encoded segment needs no copy afterwards.
// (MallocMessageBuilder would zero caller-provided scratch when destroyed.)
class scratch_builder final : public capnp::MessageBuilder {
 public:
  explicit scratch_builder(kj::ArrayPtr<capnp::word> first) : first_(first) {}

  kj::ArrayPtr<capnp::word> allocateSegment(unsigned minimum_size) override {
    if (!first_used_ && minimum_size <= first_.size()) {
      first_used_ = true;
      return first_;
    }
    first_used_ = true;
    // Only reached when the estimate was short: the result is copied once.
    size_t words = std::max<size_t>(minimum_size, 8192);
    auto seg = kj::heapArray<capnp::word>(words);
    std::memset(seg.begin(), 0, words * sizeof(capnp::word));
    more_.push_back(std::move(seg));
    return more_.back();
  }

 private:
  kj::ArrayPtr<capnp::word> first_;
  bool first_used_ = false;
  std::vector<kj::Array<capnp::word>> more_;
};

capnp::Text::Reader text_of(const std::string& s) { return capnp::Text::Reader(s.data(), s.size()); }

capnp::Data::Reader data_of(const bytes& b) { return capnp::Data::Reader(b.data(), b.size()); }

// What encoding needs besides the builder: the plan deciding which arrays
// are referenced, and the chunks referenced so far, in segment order.
struct encode_state {
  external_plan plan;
  std::vector<external_chunk> externals;
};

void encode_array(const array& a, schema::Array::Builder out, encode_state& st) {
  out.setDtype(static_cast<uint8_t>(a.type()));
  auto shape = out.initShape(static_cast<unsigned>(a.shape().size()));
  for (unsigned i = 0; i < a.shape().size(); ++i) shape.set(i, a.shape()[i]);
  size_t total = a.nbytes();
  out.setByteLength(total);
  const size_t chunk_size = st.plan.chunk_size;
  size_t count = total == 0 ? 0 : (total + chunk_size - 1) / chunk_size;
  auto chunks = out.initChunks(static_cast<unsigned>(count));
  bool referenced = st.plan.take(a);
  for (size_t i = 0; i < count; ++i) {
    size_t off = i * chunk_size;
    size_t len = std::min(chunk_size, total - off);
    if (referenced) {
      // Cap'n Proto rounds the segment up to whole words; build() copies
      // only `len` bytes of it and zeroes the rest, never reading past.
      auto orphan = capnp::Orphanage::getForMessageContaining(out).referenceExternalData(
          capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(a.data() + off), len));
      chunks.adopt(static_cast<unsigned>(i), kj::mv(orphan));
      st.externals.push_back(external_chunk{a.bytes().slice(off, len)});
    } else {
      auto blob = chunks.init(static_cast<unsigned>(i), static_cast<unsigned>(len));
      std::memcpy(blob.begin(), a.data() + off, len);
    }
  }
}

void encode_config(const config_value& v, schema::ConfigRecord::Entry::Value::Builder out) {
  std::visit(
      [&](auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          out.setInt64(x);
        } else if constexpr (std::is_same_v<T, double>) {
          out.setFloat64(x);
        } else if constexpr (std::is_same_v<T, bool>) {
          out.setBool(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          out.setString(text_of(x));
        } else if constexpr (std::is_same_v<T, bytes>) {
          out.setBytes(data_of(x));
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          auto l = out.initInt64List(static_cast<unsigned>(x.size()));
          for (unsigned i = 0; i < x.size(); ++i) l.set(i, x[i]);
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          auto l = out.initFloat64List(static_cast<unsigned>(x.size()));
          for (unsigned i = 0; i < x.size(); ++i) l.set(i, x[i]);
        } else if constexpr (std::is_same_v<T, std::vector<bool>>) {
          auto l = out.initBoolList(static_cast<unsigned>(x.size()));
          for (unsigned i = 0; i < x.size(); ++i) l.set(i, x[i]);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          auto l = out.initStringList(static_cast<unsigned>(x.size()));
          for (unsigned i = 0; i < x.size(); ++i) l.set(i, text_of(x[i]));
        } else {
          auto l = out.initBytesList(static_cast<unsigned>(x.size()));
          for (unsigned i = 0; i < x.size(); ++i) l.set(i, data_of(x[i]));
        }
      },
      v);
}

void encode_metric(const metric_value& v, schema::MetricRecord::Entry::Value::Builder out) {
  std::visit(
      [&](auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          out.setInt64(x);
        } else if constexpr (std::is_same_v<T, double>) {
          out.setFloat64(x);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          auto l = out.initInt64List(static_cast<unsigned>(x.size()));
          for (unsigned i = 0; i < x.size(); ++i) l.set(i, x[i]);
        } else {
          auto l = out.initFloat64List(static_cast<unsigned>(x.size()));
          for (unsigned i = 0; i < x.size(); ++i) l.set(i, x[i]);
        }
      },
      v);
}

void encode_content_into(const record_dict& content, schema::RecordDict::Builder out,
                         encode_state& st);

// Writes metadata and error; the content too unless it travels separately.
void encode_message(const message& m, schema::Message::Builder out, encode_state& st,
                    bool with_content) {
  auto md = out.initMetadata();
  auto& in = m.meta();
  md.setRunId(in.run_id);
  md.setMessageId(text_of(in.message_id));
  md.setSrcNodeId(in.src_node_id);
  md.setDstNodeId(in.dst_node_id);
  md.setReplyToMessageId(text_of(in.reply_to_message_id));
  md.setGroupId(text_of(in.group_id));
  md.setCreatedAt(in.created_at);
  md.setTtl(in.ttl);
  md.setMessageType(text_of(in.message_type));
  if (m.has_error()) {
    auto e = out.initError();
    e.setCode(m.error().code);
    e.setReason(text_of(m.error().reason));
    return;
  }
  if (with_content) encode_content_into(m.content(), out.initContent(), st);
}

void encode_content_into(const record_dict& content, schema::RecordDict::Builder out,
                         encode_state& st) {
  auto entries = out.initEntries(static_cast<unsigned>(content.size()));
  unsigned i = 0;
  for (auto& [name, rec] : content) {
    auto e = entries[i++];
    e.setName(text_of(name));
    if (auto* ar = std::get_if<array_record>(&rec)) {
      auto xs = e.initArrays().initEntries(static_cast<unsigned>(ar->size()));
      unsigned j = 0;
      for (auto& [k, a] : *ar) {
        xs[j].setName(text_of(k));
        encode_array(a, xs[j++].initArray(), st);
      }
    } else if (auto* cr = std::get_if<config_record>(&rec)) {
      auto xs = e.initConfigs().initEntries(static_cast<unsigned>(cr->size()));
      unsigned j = 0;
      for (auto& [k, v] : *cr) {
        xs[j].setName(text_of(k));
        encode_config(v, xs[j++].initValue());
      }
    } else {
      auto& mr = std::get<metric_record>(rec);
      auto xs = e.initMetrics().initEntries(static_cast<unsigned>(mr.size()));
      unsigned j = 0;
      for (auto& [k, v] : mr) {
        xs[j].setName(text_of(k));
        encode_metric(v, xs[j++].initValue());
      }
    }
  }
}


expected<void> check_options(const codec_options& opts) {
  if (opts.chunk_size == 0 || opts.chunk_size % 8 != 0 || opts.chunk_size > (size_t{1} << 29) - 8)
    return fail(errc::invalid_argument, "codec chunk_size must be a positive multiple of 8 below "
                                        "512 MiB, got " + std::to_string(opts.chunk_size));
  return {};
}

// The segment table of a Cap'n Proto stream (count - 1, each size in words,
// padded to whole words) and the stream's total size; fails past the
// segment or size limits.
struct stream_table {
  std::vector<uint32_t> words;
  size_t total;
  size_t bytes() const { return words.size() * 4; }
};

expected<stream_table> table_of(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments,
                                const codec_options& opts) {
  if (segments.size() > max_segments)
    return fail(errc::invalid_message, "message needs " + std::to_string(segments.size()) +
                                           " segments, more than the " +
                                           std::to_string(max_segments) + " allowed");
  size_t table = round8(4 * (segments.size() + 1));
  size_t total = table;
  for (auto& seg : segments) total += seg.size() * sizeof(capnp::word);
  if (total > opts.max_message_size)
    return fail(errc::message_too_large,
                "encoded message of " + std::to_string(total) +
                    " bytes exceeds the maximum message size of " +
                    std::to_string(opts.max_message_size) + " bytes (codec_options)");
  stream_table t{std::vector<uint32_t>(table / 4, 0), total};
  t.words[0] = static_cast<uint32_t>(segments.size() - 1);
  for (size_t i = 0; i < segments.size(); ++i) t.words[i + 1] = static_cast<uint32_t>(segments[i].size());
  return t;
}

// Walks a built message's segments in order: a referenced chunk (in segment
// order in `externals`) goes to `chunk(bytes, segment_size)`, whose segment is
// the chunk rounded up to whole words; any other segment to `other(begin,
// size)`.
template <class Chunk, class Other>
void walk_segments(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments,
                   const std::vector<external_chunk>& externals, Chunk chunk, Other other) {
  size_t next = 0;
  for (auto& seg : segments) {
    size_t bytes = seg.size() * sizeof(capnp::word);
    auto* begin = reinterpret_cast<const std::byte*>(seg.begin());
    if (next < externals.size() && externals[next].bytes.data() == begin &&
        round8(externals[next].bytes.size()) == bytes)
      chunk(externals[next++].bytes, bytes);
    else
      other(begin, bytes);
  }
}

// Writes a Cap'n Proto stream (segment table, then each segment) into one
// buffer that needs no zeroing: every byte is written once. Referenced
// chunks are copied for their own length, the rest of their last word zeroed.
expected<buffer> flatten(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments,
                         const std::vector<external_chunk>& externals, const codec_options& opts) {
  auto t = table_of(segments, opts);
  if (!t) return t.error();
  auto [out, raw] = buffer::allocate_for_overwrite(t->total);
  std::memcpy(raw, t->words.data(), t->bytes());
  auto* at = raw + t->bytes();
  walk_segments(
      segments, externals,
      [&](const buffer& c, size_t bytes) {
        std::memcpy(at, c.data(), c.size());
        std::memset(at + c.size(), 0, bytes - c.size());
        at += bytes;
      },
      [&](const std::byte* begin, size_t bytes) {
        std::memcpy(at, begin, bytes);
        at += bytes;
      });
  return out;
}

// The parts of a Cap'n Proto stream, not joined: the segment table, the
// first segment where the builder left it (in `first`), each referenced chunk
// as the slice of its array it is (with zeros to its last whole word), and
// any other segment copied (only when the estimate fell short).
expected<std::vector<buffer>> parts_of(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments,
                                       const std::vector<external_chunk>& externals,
                                       const buffer& first, const codec_options& opts) {
  auto t = table_of(segments, opts);
  if (!t) return t.error();
  static const std::array<std::byte, 8> zeros{};
  std::vector<buffer> parts;
  parts.push_back(buffer::copy_of(t->words.data(), t->bytes()));
  walk_segments(
      segments, externals,
      [&](const buffer& c, size_t bytes) {
        parts.push_back(c);
        if (bytes > c.size()) parts.push_back(buffer{nullptr, zeros.data(), bytes - c.size()});
      },
      [&](const std::byte* begin, size_t bytes) {
        parts.push_back(begin == first.data() ? first.slice(0, bytes) : buffer::copy_of(begin, bytes));
      });
  return parts;
}

// Builds a message with `fill(builder, state)` into a first segment sized by
// `est` (the estimate made with the same plan), which sits in `out` after one
// word left free for a one-segment table, and hands the result to
// `finish(out, raw, segments, state)`, `raw` being `out`'s writable bytes.
template <class Fill, class Finish>
auto build_with(const estimator& est, const codec_options& opts, Fill fill, Finish finish)
    -> decltype(finish(buffer{}, nullptr, kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>{},
                       std::declval<encode_state&>())) {
  // The estimate overshoots by a little, never by a sixteenth.
  if (est.n > opts.max_message_size + (opts.max_message_size >> 4) + 4096)
    return fail(errc::message_too_large,
                "message of about " + std::to_string(est.n) +
                    " bytes exceeds the maximum message size of " +
                    std::to_string(opts.max_message_size) + " bytes (codec_options)");
  // The first segment holds everything but the referenced arrays.
  size_t words = std::min((est.n - est.external_n) / 8 + 1, max_segment_words);
  auto [out, raw] = buffer::allocate(8 + words * 8);
  try {
    scratch_builder builder(kj::arrayPtr(reinterpret_cast<capnp::word*>(raw + 8), words));
    encode_state st{external_plan{opts.chunk_size}, {}};
    fill(builder, st);
    return finish(out, raw, builder.getSegmentsForOutput(), st);
  } catch (const kj::Exception& e) {
    return fail(errc::invalid_message, std::string{"cannot encode message: "} +
                                           e.getDescription().cStr());
  }
}

// Builds one flat message: in place when it fits its first segment (the
// table goes in the word left free), else flattened.
template <class Fill>
expected<buffer> build(const estimator& est, const codec_options& opts, Fill fill) {
  return build_with(est, opts, fill,
                    [&](const buffer& out, std::byte* raw,
                        kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments,
                        encode_state& st) -> expected<buffer> {
                      if (segments.size() != 1 ||
                          reinterpret_cast<const std::byte*>(segments[0].begin()) != raw + 8)
                        return flatten(segments, st.externals, opts);
                      uint32_t header[2] = {0, static_cast<uint32_t>(segments[0].size())};
                      std::memcpy(raw, header, 8);
                      size_t total = 8 + segments[0].size() * 8;
                      if (total > opts.max_message_size)
                        return fail(errc::message_too_large,
                                    "encoded message of " + std::to_string(total) +
                                        " bytes exceeds the maximum message size of " +
                                        std::to_string(opts.max_message_size) +
                                        " bytes (codec_options)");
                      // Small messages are copied to a snug buffer rather
                      // than pinning the slack.
                      if (total < (size_t{1} << 20) && total * 2 < out.size())
                        return buffer::copy_of(raw, total);
                      return out.slice(0, total);
                    });
}

// Like build, in parts (parts_of): one flat part when no array is referenced.
template <class Fill>
expected<std::vector<buffer>> build_parts(const estimator& est, const codec_options& opts, Fill fill) {
  if (est.external_n == 0) {
    auto flat = build(est, opts, fill);
    if (!flat) return flat.error();
    return std::vector<buffer>{std::move(*flat)};
  }
  return build_with(est, opts, fill,
                    [&](const buffer& out, std::byte*,
                        kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments, encode_state& st) {
                      return parts_of(segments, st.externals, out.slice(8, out.size() - 8), opts);
                    });
}

}  // namespace

expected<buffer> encode(const message& msg, const codec_options& opts) {
  if (auto ok = check_options(opts); !ok) return ok.error();
  estimator est{opts.chunk_size};
  est.msg(msg);
  if (msg.has_content()) est.content(msg.content());
  return build(est, opts, [&](capnp::MessageBuilder& b, encode_state& st) {
    encode_message(msg, b.initRoot<schema::Message>(), st, true);
  });
}

expected<std::vector<buffer>> encode_parts(const message& msg, const codec_options& opts) {
  if (auto ok = check_options(opts); !ok) return ok.error();
  estimator est{opts.chunk_size};
  est.msg(msg);
  if (msg.has_content()) est.content(msg.content());
  return build_parts(est, opts, [&](capnp::MessageBuilder& b, encode_state& st) {
    encode_message(msg, b.initRoot<schema::Message>(), st, true);
  });
}

expected<std::vector<buffer>> encode_content_parts(const record_dict& content,
                                                   const codec_options& opts) {
  if (auto ok = check_options(opts); !ok) return ok.error();
  estimator est{opts.chunk_size};
  est.content(content);
  return build_parts(est, opts, [&](capnp::MessageBuilder& b, encode_state& st) {
    encode_content_into(content, b.initRoot<schema::RecordDict>(), st);
  });
}

expected<buffer> encode_header(const message& msg, const codec_options& opts) {
  if (auto ok = check_options(opts); !ok) return ok.error();
  estimator est{opts.chunk_size};
  est.msg(msg);
  return build(est, opts, [&](capnp::MessageBuilder& b, encode_state& st) {
    encode_message(msg, b.initRoot<schema::Message>(), st, false);
  });
}

expected<buffer> encode_content(const record_dict& content, const codec_options& opts) {
  if (auto ok = check_options(opts); !ok) return ok.error();
  estimator est{opts.chunk_size};
  est.content(content);
  return build(est, opts, [&](capnp::MessageBuilder& b, encode_state& st) {
    encode_content_into(content, b.initRoot<schema::RecordDict>(), st);
  });
}

}  // namespace stamen
