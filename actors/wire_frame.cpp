#include "actors/wire_frame.hpp"

#include <algorithm>
#include <cstring>
#include <utility>


namespace stamen::wire {

namespace {

// Frames are little-endian on the wire; so is every host we build for, and
// the static_assert keeps it that way rather than swapping bytes silently.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the wire format assumes little-endian hosts");

size_t pad8(size_t n) { return (8 - n % 8) % 8; }

}  // namespace

const char* to_string(frame_type t) {
  switch (t) {
    case frame_type::challenge: return "challenge";
    case frame_type::hello: return "hello";
    case frame_type::accept: return "accept";
    case frame_type::refuse: return "refuse";
    case frame_type::run: return "run";
    case frame_type::instruct: return "instruct";
    case frame_type::reply: return "reply";
    case frame_type::ping: return "ping";
    case frame_type::submit: return "submit";
    case frame_type::log: return "log";
    case frame_type::result: return "result";
    case frame_type::fetch: return "fetch";
    case frame_type::bundle: return "bundle";
    case frame_type::accepted: return "accepted";
    case frame_type::control: return "control";
    case frame_type::artifact: return "artifact";
    case frame_type::run_end: return "run_end";
    case frame_type::progress: return "progress";
  }
  return "unknown";
}

std::array<std::byte, header_size> encode_header(frame_type type, uint64_t length) {
  std::array<std::byte, header_size> out{};
  std::memcpy(out.data(), &magic, 4);
  out[4] = std::byte{version};
  out[5] = static_cast<std::byte>(type);
  std::memcpy(out.data() + 8, &length, 8);
  return out;
}

expected<frame_header> decode_header(const std::byte* bytes, uint64_t max_length) {
  uint32_t m;
  std::memcpy(&m, bytes, 4);
  if (m != magic) return fail(errc::decode_failed, "not a Stamen frame (bad magic bytes)");
  auto v = static_cast<uint8_t>(bytes[4]);
  if (v != version)
    return fail(errc::decode_failed, "unsupported protocol version " + std::to_string(v) +
                                         " (this build speaks " + std::to_string(version) + ")");
  auto t = static_cast<uint8_t>(bytes[5]);
  if (t < static_cast<uint8_t>(frame_type::challenge) || t > static_cast<uint8_t>(last_frame_type))
    return fail(errc::decode_failed, "unknown frame type " + std::to_string(t));
  if (bytes[6] != std::byte{0} || bytes[7] != std::byte{0})
    return fail(errc::decode_failed, "reserved header bytes are not zero");
  uint64_t length;
  std::memcpy(&length, bytes + 8, 8);
  if (length > max_length)
    return fail(errc::message_too_large,
                std::string{to_string(static_cast<frame_type>(t))} + " frame of " +
                    std::to_string(length) + " bytes exceeds the limit of " +
                    std::to_string(max_length) + " bytes");
  return frame_header{static_cast<frame_type>(t), length};
}

void writer::raw(const void* data, size_t size) {
  auto* p = static_cast<const std::byte*>(data);
  out_.insert(out_.end(), p, p + size);
}

void writer::u8(uint8_t x) { out_.push_back(std::byte{x}); }
void writer::u64(uint64_t x) { raw(&x, 8); }
void writer::f64(double x) { raw(&x, 8); }

void writer::str(const std::string& x) {
  u64(x.size());
  raw(x.data(), x.size());
}

void writer::blob(const std::byte* data, size_t size) {
  u64(size);
  out_.resize(out_.size() + pad8(out_.size()));
  raw(data, size);
}

expected<void> reader::need(size_t n, const char* field) const {
  if (buf_.size() - pos_ < n)
    return fail(errc::decode_failed, std::string{"frame ends inside field '"} + field + "' (needs " +
                                         std::to_string(n) + " bytes at offset " +
                                         std::to_string(pos_) + " of " +
                                         std::to_string(buf_.size()) + ")");
  return {};
}

expected<uint8_t> reader::u8(const char* field) {
  if (auto ok = need(1, field); !ok) return ok.error();
  return static_cast<uint8_t>(buf_.data()[pos_++]);
}

expected<uint64_t> reader::u64(const char* field) {
  if (auto ok = need(8, field); !ok) return ok.error();
  uint64_t x;
  std::memcpy(&x, buf_.data() + pos_, 8);
  pos_ += 8;
  return x;
}

expected<double> reader::f64(const char* field) {
  if (auto ok = need(8, field); !ok) return ok.error();
  double x;
  std::memcpy(&x, buf_.data() + pos_, 8);
  pos_ += 8;
  return x;
}

expected<std::string> reader::str(const char* field, size_t max_size) {
  auto n = u64(field);
  if (!n) return n.error();
  if (*n > max_size)
    return fail(errc::decode_failed, std::string{"field '"} + field + "' declares " +
                                         std::to_string(*n) + " bytes, more than its limit of " +
                                         std::to_string(max_size));
  if (auto ok = need(*n, field); !ok) return ok.error();
  std::string out(reinterpret_cast<const char*>(buf_.data() + pos_), *n);
  pos_ += *n;
  return out;
}

expected<buffer> reader::blob(const char* field) {
  auto n = u64(field);
  if (!n) return n.error();
  if (auto ok = need(pad8(pos_), field); !ok) return ok.error();
  pos_ += pad8(pos_);
  if (auto ok = need(*n, field); !ok) return ok.error();
  auto out = buf_.slice(pos_, *n);
  pos_ += *n;
  return out;
}

expected<void> reader::finish(const char* what) const {
  if (pos_ != buf_.size())
    return fail(errc::decode_failed, std::string{what} + " frame has " +
                                         std::to_string(buf_.size() - pos_) +
                                         " unexpected trailing bytes");
  return {};
}

std::vector<std::byte> envelope_payload(const envelope& e) {
  // What the outbox writes, less the frame header: one layout for both.
  std::vector<char> frame;
  append_envelope_frame(frame, frame_type::instruct, e);
  auto* p = reinterpret_cast<const std::byte*>(frame.data());
  return {p + header_size, p + frame.size()};
}

expected<envelope> read_envelope(const buffer& payload) {
  reader r{payload};
  envelope e;
  auto id = r.str("message_id", 4096);
  if (!id) return id.error();
  auto to = r.str("reply_to", 4096);
  if (!to) return to.error();
  auto node = r.u64("node_id");
  if (!node) return node.error();
  auto deadline = r.f64("deadline");
  if (!deadline) return deadline.error();
  auto bytes = r.blob("bytes");
  if (!bytes) return bytes.error();
  auto content = r.blob("content");
  if (!content) return content.error();
  if (auto ok = r.finish("envelope"); !ok) return ok.error();
  e.message_id = std::move(*id);
  e.reply_to = std::move(*to);
  e.node_id = *node;
  // The time it had left when it was sent, from now on this host's own
  // clock (transit time aside): two hosts' clocks are never compared.
  e.deadline = *deadline > 0 ? steady_seconds() + *deadline : *deadline < 0 ? deadline_passed : 0;
  e.bytes = std::move(*bytes);
  e.content = content->empty() ? buffer{} : std::move(*content);
  return e;
}

void append_envelope_frame(std::vector<char>& out, frame_type type, const envelope& e) {
  outbox box;
  box.push_envelope(type, e);
  out.reserve(out.size() + box.queued());
  box.fill(out, box.queued());
}

void outbox::push_bytes(std::vector<char> bytes) {
  if (bytes.empty()) return;
  queued_ += bytes.size();
  parts_.push_back(part{std::move(bytes), {}, 0});
}

void outbox::push(frame_type type, const std::vector<std::byte>& payload) {
  std::vector<char> bytes;
  append_frame(bytes, type, payload);
  push_bytes(std::move(bytes));
}

void outbox::push_envelope(frame_type type, const envelope& e) {
  // Message id, reply-to, node id, deadline, then the two blobs (each a
  // length, padding to 8 bytes from the payload's start, the bytes); the
  // blobs' bytes stay where they are until fill copies them.
  writer head;
  head.str(e.message_id);
  head.str(e.reply_to);
  head.u64(e.node_id);
  // The deadline as the time left (-1: none left; 0: no deadline), which
  // the receiver sets against its own clock.
  double left = e.deadline > 0 ? e.deadline - steady_seconds() : 0;
  head.f64(e.deadline > 0 ? (left > 0 ? left : -1.0) : 0.0);
  size_t pos = head.bytes().size();
  auto blob_at = [&pos](size_t n) {
    pos += 8;
    pos += pad8(pos);
    size_t at = pos;
    pos += n;
    return at;
  };
  const size_t bytes_n = e.bytes_size();
  size_t bytes_at = blob_at(bytes_n);
  const size_t content_n = e.content_size();
  size_t content_at = blob_at(content_n);
  const size_t length = pos;
  std::vector<char> first;
  auto hdr = encode_header(type, length);
  auto put = [](std::vector<char>& v, const void* p, size_t n) {
    auto* c = static_cast<const char*>(p);
    v.insert(v.end(), c, c + n);
  };
  put(first, hdr.data(), header_size);
  put(first, head.bytes().data(), head.bytes().size());
  uint64_t n = bytes_n;
  put(first, &n, 8);
  first.resize(header_size + bytes_at);
  push_bytes(std::move(first));
  auto push_blob = [this](const buffer& b) {
    if (b.empty()) return;
    queued_ += b.size();
    parts_.push_back(part{{}, b, 0});
  };
  push_blob(e.bytes);
  for (auto& p : e.bytes_parts) push_blob(p);
  std::vector<char> mid;
  n = content_n;
  put(mid, &n, 8);
  mid.resize(content_at - (bytes_at + bytes_n));
  push_bytes(std::move(mid));
  push_blob(e.content);
  for (auto& p : e.content_parts) push_blob(p);
}

size_t outbox::fill(std::vector<char>& out, size_t budget) {
  size_t moved = 0;
  while (moved < budget && !parts_.empty()) {
    auto& p = parts_.front();
    size_t n = std::min(budget - moved, p.size() - p.offset);
    const char* src = p.blob.empty() ? p.bytes.data() + p.offset
                                     : reinterpret_cast<const char*>(p.blob.data()) + p.offset;
    out.insert(out.end(), src, src + n);
    p.offset += n;
    moved += n;
    if (p.offset == p.size()) parts_.pop_front();
  }
  queued_ -= moved;
  return moved;
}

void append_frame(std::vector<char>& out, frame_type type, const std::vector<std::byte>& payload) {
  auto hdr = encode_header(type, payload.size());
  auto* h = reinterpret_cast<const char*>(hdr.data());
  out.insert(out.end(), h, h + header_size);
  auto* b = reinterpret_cast<const char*>(payload.data());
  out.insert(out.end(), b, b + payload.size());
}

size_t frame_assembler::next_read() const {
  if (!in_payload_) return header_size;
  return static_cast<size_t>(std::min<uint64_t>(chunk_, length_ - got_));
}

expected<std::optional<frame>> frame_assembler::feed(const std::byte* data, size_t n) {
  if (!in_payload_) {
    if (n != header_size)
      return fail(errc::decode_failed, "short frame header (" + std::to_string(n) + " bytes)");
    auto h = decode_header(data, std::max(max_length_, discard_limit_));
    if (!h) return h.error();
    if (h->length == 0) return std::optional<frame>{frame{h->type, buffer{}}};
    type_ = h->type;
    length_ = h->length;
    got_ = 0;
    in_payload_ = true;
    discarding_ = length_ > max_length_;
    if (discarding_) return std::optional<frame>{};
    auto [b, fill] = buffer::allocate_for_overwrite(static_cast<size_t>(length_));
    payload_ = std::move(b);
    fill_ = fill;
    return std::optional<frame>{};
  }
  if (n > length_ - got_)
    return fail(errc::decode_failed, "read past the end of a frame's payload");
  if (!discarding_) std::memcpy(fill_ + got_, data, n);
  return advance(n);
}

std::optional<frame_assembler::target> frame_assembler::payload_target() const {
  if (!in_payload_ || discarding_) return std::nullopt;
  return target{payload_, fill_ + got_, static_cast<size_t>(length_ - got_)};
}

expected<std::optional<frame>> frame_assembler::placed(size_t n) {
  if (!in_payload_ || discarding_ || n > length_ - got_)
    return fail(errc::decode_failed, "read past the end of a frame's payload");
  return advance(n);
}

expected<std::optional<frame>> frame_assembler::advance(size_t n) {
  got_ += n;
  if (got_ < length_) return std::optional<frame>{};
  in_payload_ = false;
  fill_ = nullptr;
  if (std::exchange(discarding_, false)) return std::optional<frame>{frame{type_, buffer{}, length_}};
  return std::optional<frame>{frame{type_, std::move(payload_)}};
}

}  // namespace stamen::wire
