// The cluster's frames, without sockets: what a peer can send is checked
// before anything is allocated for it, and envelopes cross intact.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "actors/wire_frame.hpp"

using namespace stamen;
using namespace stamen::wire;

namespace {

buffer to_buffer(const std::vector<std::byte>& v) { return buffer::copy_of(v.data(), v.size()); }

// Feeds `bytes` to an assembler in the exact pieces it asks for.
std::vector<frame> feed_all(frame_assembler& fa, const std::vector<char>& bytes) {
  std::vector<frame> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    auto n = fa.next_read();
    BOOST_REQUIRE_LE(pos + n, bytes.size());
    auto f = fa.feed(reinterpret_cast<const std::byte*>(bytes.data() + pos), n);
    if (!f) BOOST_FAIL(f.error().what);
    pos += n;
    if (*f) out.push_back(std::move(**f));
  }
  return out;
}

envelope sample_envelope(size_t bytes, size_t content) {
  std::vector<std::byte> b(bytes), c(content);
  for (size_t i = 0; i < bytes; ++i) b[i] = static_cast<std::byte>(i * 7);
  for (size_t i = 0; i < content; ++i) c[i] = static_cast<std::byte>(i * 13 + 1);
  return envelope{"run:1", "reply-to-0", 42, steady_seconds() + 60, buffer::copy_of(b.data(), b.size()),
                  content ? buffer::copy_of(c.data(), c.size()) : buffer{}};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(wire_frame)

BOOST_AUTO_TEST_CASE(header_round_trips_and_rejects_what_it_must) {
  auto h = encode_header(frame_type::reply, 123456789);
  auto d = decode_header(h.data(), 1 << 30);
  BOOST_REQUIRE(d);
  BOOST_TEST(static_cast<int>(d->type) == static_cast<int>(frame_type::reply));
  BOOST_TEST(d->length == 123456789u);

  auto bad = h;
  bad[0] = std::byte{'G'};  // "GET / HTTP/1.1"
  BOOST_TEST(decode_header(bad.data(), 1 << 30).error().what.find("bad magic") != std::string::npos);
  bad = h;
  bad[4] = std::byte{9};
  BOOST_TEST(decode_header(bad.data(), 1 << 30).error().what.find("version 9") != std::string::npos);
  bad = h;
  bad[5] = std::byte{200};
  BOOST_TEST(decode_header(bad.data(), 1 << 30).error().what.find("frame type 200") != std::string::npos);
  bad = h;
  bad[6] = std::byte{1};
  BOOST_TEST(!decode_header(bad.data(), 1 << 30));
  auto too_big = decode_header(h.data(), 1000);
  BOOST_REQUIRE(!too_big);
  BOOST_TEST(too_big.error().code == errc::message_too_large);
  BOOST_TEST(too_big.error().what.find("reply frame of 123456789 bytes exceeds the limit of 1000") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_forged_terabyte_length_is_refused_before_allocation) {
  frame_assembler fa{64 << 10};
  auto h = encode_header(frame_type::hello, uint64_t{1} << 40);
  auto f = fa.feed(h.data(), h.size());
  BOOST_REQUIRE(!f);
  BOOST_TEST(f.error().code == errc::message_too_large);
  BOOST_TEST(!fa.mid_frame());
}

BOOST_AUTO_TEST_CASE(a_frame_past_the_limit_but_within_the_discard_limit_is_read_and_dropped_unallocated) {
  // A node that owes no reply is held to 1 KiB; a 64 KiB reply from it is
  // read in pieces and dropped, and the next frame comes out whole.
  frame_assembler fa{1 << 10, 4096};
  fa.set_discard_limit(1 << 20);
  std::vector<char> bytes;
  append_frame(bytes, frame_type::reply, std::vector<std::byte>(64 << 10, std::byte{7}));
  append_frame(bytes, frame_type::fetch, std::vector<std::byte>(16, std::byte{1}));
  size_t pos = 0;
  std::vector<frame> out;
  while (pos < bytes.size()) {
    // Nothing to read into while a payload is dropped: the reader's own
    // buffer takes the bytes.
    if (fa.mid_frame() && out.empty()) BOOST_TEST(!fa.payload_target().has_value());
    auto n = fa.next_read();
    auto f = fa.feed(reinterpret_cast<const std::byte*>(bytes.data() + pos), n);
    BOOST_REQUIRE(f);
    pos += n;
    if (*f) out.push_back(std::move(**f));
  }
  BOOST_REQUIRE_EQUAL(out.size(), 2u);
  BOOST_TEST((out[0].type == frame_type::reply));
  BOOST_TEST(out[0].discarded == uint64_t{64} << 10);
  BOOST_TEST(out[0].payload.empty());
  BOOST_TEST(out[1].discarded == 0u);
  BOOST_TEST(out[1].payload.size() == 16u);
  // Past the discard limit it is refused from the header, as without one.
  auto h = encode_header(frame_type::reply, 2 << 20);
  auto f = fa.feed(h.data(), h.size());
  BOOST_REQUIRE(!f);
  BOOST_TEST(f.error().code == errc::message_too_large);
}

// A deadline crosses as the time it has left: the receiver's clock, however
// far from the sender's or however it jumps, never makes an instruction
// expire early or live long.
BOOST_AUTO_TEST_CASE(a_deadline_crosses_as_time_left_and_a_passed_one_stays_passed) {
  auto roundtrip = [](double deadline) {
    auto e = sample_envelope(16, 0);
    e.deadline = deadline;
    auto payload = envelope_payload(e);
    // What travels is the time left, not a time on the sender's clock.
    wire::reader r{to_buffer(payload)};
    (void)r.str("id");
    (void)r.str("reply_to");
    (void)r.u64("node");
    auto sent = r.f64("deadline");
    BOOST_REQUIRE(sent);
    auto back = read_envelope(to_buffer(payload));
    BOOST_REQUIRE(back);
    return std::pair{*sent, back->deadline};
  };
  auto [left, local] = roundtrip(steady_seconds() + 30);
  BOOST_TEST(left > 25.0);
  BOOST_TEST(left <= 30.0);
  BOOST_TEST(std::abs(local - (steady_seconds() + 30)) < 5.0);
  auto [none, none_local] = roundtrip(0);
  BOOST_TEST(none == 0.0);
  BOOST_TEST(none_local == 0.0);
  auto [passed, passed_local] = roundtrip(steady_seconds() - 5);
  BOOST_TEST(passed == -1.0);
  BOOST_TEST(passed_local == deadline_passed);
  BOOST_TEST(passed_local - steady_seconds() < 0);
}

BOOST_AUTO_TEST_CASE(envelopes_cross_in_chunks_intact_and_aligned) {
  for (size_t chunk : {size_t{7}, size_t{4096}, size_t{1} << 20}) {
    std::vector<char> stream;
    auto a = sample_envelope(100001, 0);
    auto b = sample_envelope(13, 3 * 4096 + 5);
    append_envelope_frame(stream, frame_type::instruct, a);
    append_frame(stream, frame_type::ping, {});
    append_envelope_frame(stream, frame_type::reply, b);
    frame_assembler fa{1 << 30, chunk};
    auto frames = feed_all(fa, stream);
    BOOST_REQUIRE_EQUAL(frames.size(), 3u);
    BOOST_TEST(static_cast<int>(frames[1].type) == static_cast<int>(frame_type::ping));
    auto ra = read_envelope(frames[0].payload);
    auto rb = read_envelope(frames[2].payload);
    BOOST_REQUIRE(ra && rb);
    BOOST_TEST(ra->message_id == a.message_id);
    BOOST_TEST(ra->reply_to == a.reply_to);
    BOOST_TEST(ra->node_id == a.node_id);
    // The time it had left, set against this host's clock (transit aside).
    BOOST_TEST(std::abs(ra->deadline - a.deadline) < 5.0);
    BOOST_TEST((ra->bytes == a.bytes));
    BOOST_TEST(ra->content.empty());
    BOOST_TEST((rb->bytes == b.bytes));
    BOOST_TEST((rb->content == b.content));
    // Cap'n Proto reads words: the blobs must be 8-aligned where they lie.
    BOOST_TEST(reinterpret_cast<uintptr_t>(ra->bytes.data()) % 8 == 0u);
    BOOST_TEST(reinterpret_cast<uintptr_t>(rb->content.data()) % 8 == 0u);
    // Blobs are slices of the frame's payload, not copies.
    BOOST_TEST(ra->bytes.use_count() >= 2);
  }
}

BOOST_AUTO_TEST_CASE(an_envelope_in_parts_makes_the_same_frame) {
  auto whole = sample_envelope(5000, 4096 + 3);
  whole.deadline = 0;  // the time left would differ between the two writes
  auto split = whole;
  split.bytes = buffer{};
  split.bytes_parts = {whole.bytes.slice(0, 17), whole.bytes.slice(17, 0), whole.bytes.slice(17, 4983)};
  BOOST_TEST(split.bytes_size() == whole.bytes.size());
  std::vector<char> a, b;
  append_envelope_frame(a, frame_type::reply, whole);
  append_envelope_frame(b, frame_type::reply, split);
  BOOST_TEST((a == b));
}

BOOST_AUTO_TEST_CASE(a_reader_that_places_payload_bytes_itself_gets_the_same_frames) {
  // What a TLS session does: the header through feed, then the payload
  // decrypted straight to payload_target() and accounted for with placed.
  std::vector<char> stream;
  auto a = sample_envelope(3 * 4096 + 17, 4096);
  append_envelope_frame(stream, frame_type::instruct, a);
  append_frame(stream, frame_type::ping, {});
  frame_assembler fa{1 << 30, 4096};
  std::vector<frame> frames;
  size_t pos = 0;
  while (pos < stream.size()) {
    auto n = fa.next_read();
    auto t = fa.payload_target();
    auto* at = reinterpret_cast<const std::byte*>(stream.data() + pos);
    expected<std::optional<frame>> f = std::optional<frame>{};
    if (t) {
      BOOST_REQUIRE_LE(n, t->left);
      std::memcpy(t->at, at, n);
      f = fa.placed(n);
    } else {
      f = fa.feed(at, n);
    }
    BOOST_REQUIRE(f);
    pos += n;
    if (*f) frames.push_back(std::move(**f));
  }
  BOOST_REQUIRE_EQUAL(frames.size(), 2u);
  BOOST_TEST(!fa.payload_target());
  auto ra = read_envelope(frames[0].payload);
  BOOST_REQUIRE(ra);
  BOOST_TEST((ra->bytes == a.bytes));
  BOOST_TEST((ra->content == a.content));
  // More than the payload has left, or bytes placed between frames, are refused.
  frame_assembler fb{1 << 30};
  auto h = encode_header(frame_type::reply, 10);
  BOOST_TEST(!fb.placed(4));
  BOOST_REQUIRE(fb.feed(h.data(), h.size()));
  BOOST_REQUIRE(fb.payload_target());
  BOOST_TEST(fb.payload_target()->left == 10u);
  BOOST_TEST(!fb.placed(11));
}

BOOST_AUTO_TEST_CASE(malformed_payloads_name_the_field) {
  auto full = envelope_payload(sample_envelope(64, 16));
  // Every truncation fails, and says which field ran out.
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    auto e = read_envelope(to_buffer(cut));
    BOOST_REQUIRE(!e);
    BOOST_TEST(e.error().what.find("field '") != std::string::npos);
  }
  auto longer = full;
  longer.push_back(std::byte{0});
  auto e = read_envelope(to_buffer(longer));
  BOOST_REQUIRE(!e);
  BOOST_TEST(e.error().what.find("trailing") != std::string::npos);
  // A declared string length beyond the limit is refused without reading it.
  writer huge;
  huge.u64(uint64_t{1} << 62);
  auto h = read_envelope(to_buffer(huge.bytes()));
  BOOST_REQUIRE(!h);
  BOOST_TEST(h.error().what.find("message_id") != std::string::npos);
  // Random bytes never crash the reader.
  std::mt19937 rng{7};
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::byte> junk(rng() % 200);
    for (auto& b : junk) b = static_cast<std::byte>(rng());
    (void) read_envelope(to_buffer(junk));
  }
}

BOOST_AUTO_TEST_SUITE_END()
