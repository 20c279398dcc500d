// Malformed input must give a typed error, never a crash. Some cases are built
// with the generated schema, since the codec itself never produces them.
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <boost/test/unit_test.hpp>

#include <cstring>
#include <random>

#include "message.capnp.h"
#include "messages/codec.hpp"

using namespace stamen;

namespace {

message small_message() {
  record_dict content;
  content.insert_or_assign(
      "arrays", array_record{{"w", array::from_values(dtype::float32, {4},
                                                      std::vector<float>{1, 2, 3, 4})}});
  content.insert_or_assign("metrics", metric_record{{"loss", 0.5}});
  auto m = make_instruction(std::move(content), "train", 3);
  return *m;
}

buffer to_buffer(capnp::MessageBuilder& b) {
  auto flat = capnp::messageToFlatArray(b);
  return buffer::copy_of(flat.begin(), flat.size() * sizeof(capnp::word));
}

void fill_metadata(stamen_schema::Metadata::Builder md, const char* type = "train") {
  md.setMessageType(type);
  md.setMessageId("x");
}

// A message whose single array is described by the given fields.
buffer crafted_array(uint8_t dt, std::vector<int64_t> shape, size_t nbytes, uint64_t declared) {
  capnp::MallocMessageBuilder b;
  auto root = b.initRoot<stamen_schema::Message>();
  fill_metadata(root.initMetadata());
  auto e = root.initContent().initEntries(1)[0];
  e.setName("arrays");
  auto a = e.initArrays().initEntries(1)[0];
  a.setName("w");
  auto arr = a.initArray();
  arr.setDtype(dt);
  auto s = arr.initShape(static_cast<unsigned>(shape.size()));
  for (unsigned i = 0; i < shape.size(); ++i) s.set(i, shape[i]);
  arr.initChunks(1).init(0, static_cast<unsigned>(nbytes));
  arr.setByteLength(declared);
  return to_buffer(b);
}

void expect_failure(const buffer& b, errc code, const std::string& needle,
                    const codec_options& opts = {}) {
  auto r = decode(b, opts);
  BOOST_REQUIRE_MESSAGE(!r, "decode unexpectedly succeeded");
  BOOST_TEST(static_cast<int>(r.error().code) == static_cast<int>(code), r.error().to_string());
  BOOST_TEST(r.error().what.find(needle) != std::string::npos,
             "'" << needle << "' not in: " << r.error().what);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(codec_bad_input_suite)

BOOST_AUTO_TEST_CASE(every_truncation_is_rejected) {
  auto good = *encode(small_message());
  for (size_t n = 0; n < good.size(); ++n) {
    auto r = decode(good.slice(0, n));
    BOOST_TEST(!r, "prefix of " << n << " bytes was accepted");
  }
}

BOOST_AUTO_TEST_CASE(random_bytes_and_flipped_bytes_never_crash) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> junk(8 * (1 + rng() % 64));
    for (auto& x : junk) x = static_cast<uint8_t>(rng());
    (void)decode(buffer::copy_of(junk.data(), junk.size()));
  }
  auto good = *encode(small_message());
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> copy(good.size());
    std::memcpy(copy.data(), good.data(), good.size());
    for (int k = 0; k < 3; ++k) copy[rng() % copy.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    auto r = decode(buffer::copy_of(copy.data(), copy.size()));
    if (r) (void)encode(*r);  // whatever is accepted must be a valid message
  }
}

BOOST_AUTO_TEST_CASE(forged_segment_table) {
  std::vector<uint32_t> words(16, 0);
  words[0] = 0xFFFFFFFF;  // segment count of 2^32
  expect_failure(buffer::copy_of(words.data(), 64), errc::decode_failed, "segments");
  words[0] = 0;
  words[1] = 0x10000000;  // one segment of 2 GiB declared in a 64-byte message
  expect_failure(buffer::copy_of(words.data(), 64), errc::decode_failed, "truncated");
  words[1] = 0x7FFFFFFF;  // 16 GiB: over the maximum size
  expect_failure(buffer::copy_of(words.data(), 64), errc::message_too_large, "maximum");
  words[1] = 2;  // declares less than there is
  expect_failure(buffer::copy_of(words.data(), 64), errc::decode_failed, "trailing");
}

BOOST_AUTO_TEST_CASE(nesting_deeper_than_the_limit) {
  codec_options opts;
  opts.nesting_limit = 3;
  auto r = decode(*encode(small_message()), opts);
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == errc::decode_failed);
  BOOST_TEST(r.error().what.find("nesting") != std::string::npos, r.error().what);
}

BOOST_AUTO_TEST_CASE(traversal_limit_follows_max_message_size) {
  codec_options opts;
  auto good = *encode(small_message());
  opts.max_message_size = good.size();
  auto ok = decode(good, opts);
  BOOST_TEST(ok.has_value(), (ok ? std::string{} : ok.error().to_string()));
  opts.max_message_size = good.size() - 8;
  expect_failure(good, errc::message_too_large, "exceeds", opts);
}

BOOST_AUTO_TEST_CASE(wrong_dtype_shape_and_length) {
  expect_failure(crafted_array(99, {4}, 16, 16), errc::shape_mismatch, "unknown dtype code 99");
  expect_failure(crafted_array(0, {4}, 12, 12), errc::shape_mismatch,
                 "content['arrays']['w']: float32 array");
  expect_failure(crafted_array(0, {-4}, 16, 16), errc::shape_mismatch, "negative");
  expect_failure(crafted_array(0, {4}, 16, 24), errc::shape_mismatch, "byteLength");
  expect_failure(crafted_array(1, {3}, 16, 16), errc::shape_mismatch, "needs 24 bytes");
  BOOST_TEST(static_cast<bool>(decode(crafted_array(0, {2, 2}, 16, 16))));
}

BOOST_AUTO_TEST_CASE(both_or_neither_content_and_error) {
  capnp::MallocMessageBuilder both;
  auto r = both.initRoot<stamen_schema::Message>();
  fill_metadata(r.initMetadata());
  r.initContent();
  r.initError().setCode(2);
  expect_failure(to_buffer(both), errc::invalid_message, "both content and an error");

  capnp::MallocMessageBuilder neither;
  fill_metadata(neither.initRoot<stamen_schema::Message>().initMetadata());
  expect_failure(to_buffer(neither), errc::invalid_message, "neither");
}

BOOST_AUTO_TEST_CASE(bad_message_type_and_duplicate_keys) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<stamen_schema::Message>();
  fill_metadata(r.initMetadata(), "fit");
  r.initContent();
  expect_failure(to_buffer(b), errc::invalid_message, "invalid message type 'fit'");

  capnp::MallocMessageBuilder d;
  auto root = d.initRoot<stamen_schema::Message>();
  fill_metadata(root.initMetadata());
  auto entries = root.initContent().initEntries(2);
  entries[0].setName("m");
  entries[0].initMetrics();
  entries[1].setName("m");
  entries[1].initConfigs();
  expect_failure(to_buffer(d), errc::invalid_message, "content['m']: duplicate key");
}

BOOST_AUTO_TEST_CASE(misaligned_buffer_is_still_decoded) {
  auto good = *encode(small_message());
  std::vector<std::byte> raw(good.size() + 1);
  std::memcpy(raw.data() + 1, good.data(), good.size());
  auto owner = std::make_shared<std::vector<std::byte>>(std::move(raw));
  buffer shifted{owner, owner->data() + 1, good.size()};
  auto r = decode(shifted);
  BOOST_REQUIRE(r);
  BOOST_TEST((*r == *decode(good)));
}

BOOST_AUTO_TEST_SUITE_END()
