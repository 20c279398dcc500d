#include "messages/codec.hpp"

#include <boost/test/unit_test.hpp>

#include <cstring>
#include <fstream>
#include <numeric>
#include <random>

using namespace stamen;

namespace {

message sample_message() {
  record_dict content;
  array_record arrays;
  arrays.insert_or_assign("w", array::from_values(dtype::float32, {2, 2},
                                                  std::vector<float>{1.5f, -2.f, 0.f, 1e-30f}));
  arrays.insert_or_assign("d", array::from_values(dtype::float64, {1}, std::vector<double>{3.25}));
  arrays.insert_or_assign("i64", array::from_values(dtype::int64, {2},
                                                    std::vector<int64_t>{-1, INT64_MAX}));
  arrays.insert_or_assign("i32", array::from_values(dtype::int32, {1}, std::vector<int32_t>{-7}));
  arrays.insert_or_assign("u8", array::from_values(dtype::uint8, {3}, std::vector<uint8_t>{0, 128, 255}));
  arrays.insert_or_assign("b", array::from_values(dtype::bool_, {2}, std::vector<uint8_t>{1, 0}));
  arrays.insert_or_assign("scalar", array::from_values(dtype::float32, {}, std::vector<float>{7}));
  arrays.insert_or_assign("empty", array::from_values(dtype::float32, {0}, std::vector<float>{}));
  content.insert_or_assign("arrays", arrays);
  config_record cfg{{"int", int64_t{-3}},
                    {"float", 0.125},
                    {"bool", false},
                    {"str", std::string{"héllo"}},
                    {"bytes", bytes{0, 1, 2, 255}},
                    {"ints", std::vector<int64_t>{1, 2, 3}},
                    {"floats", std::vector<double>{0.5, -1}},
                    {"bools", std::vector<bool>{true, false, true}},
                    {"strs", std::vector<std::string>{"a", "", "c"}},
                    {"bytess", std::vector<bytes>{{1}, {}}},
                    {"empty-list", std::vector<int64_t>{}}};
  content.insert_or_assign("config", cfg);
  metric_record met{{"loss", 0.75}, {"n", int64_t{12}},
                    {"hist", std::vector<int64_t>{1, 2}}, {"curve", std::vector<double>{0.1}}};
  content.insert_or_assign("metrics", met);
  content.insert_or_assign("empty-arrays", array_record{});
  content.insert_or_assign("empty-config", config_record{});
  content.insert_or_assign("empty-metrics", metric_record{});
  auto msg = make_instruction(std::move(content), "train", 5, "g1", 100.0, 77);
  msg->meta().message_id = "id-1";
  return *msg;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(codec_suite)

BOOST_AUTO_TEST_CASE(round_trip_every_value_type) {
  auto in = sample_message();
  auto bytes = encode(in);
  BOOST_REQUIRE(bytes);
  BOOST_TEST(bytes->size() % 8 == 0u);
  auto out = decode(*bytes);
  BOOST_REQUIRE_MESSAGE(out.has_value(), (out ? std::string{} : out.error().to_string()));
  BOOST_TEST((*out == in));
  // Order is preserved, not sorted.
  std::vector<std::string> names;
  for (auto& [k, v] : *out->content().arrays("arrays")) names.push_back(k);
  BOOST_TEST(names == (std::vector<std::string>{"w", "d", "i64", "i32", "u8", "b", "scalar", "empty"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(round_trip_error_and_empty_content) {
  auto in = sample_message();
  auto err = make_error_reply(in, {error_code::node_unavailable, "node 5 is gone"});
  auto out = decode(*encode(err));
  BOOST_REQUIRE(out);
  BOOST_TEST((*out == err));
  BOOST_TEST(out->error().reason == "node 5 is gone");

  auto empty = make_reply(in, {});
  auto out2 = decode(*encode(empty));
  BOOST_REQUIRE(out2);
  BOOST_TEST(out2->has_content());
  BOOST_TEST(out2->content().empty());
}

BOOST_AUTO_TEST_CASE(decode_does_not_copy_array_bytes) {
  auto in = sample_message();
  auto buf = *encode(in);
  auto out = decode(buf);
  BOOST_REQUIRE(out);
  auto& w = out->content().arrays("arrays")->get("w")->bytes();
  BOOST_TEST((w.data() >= buf.data() && w.data() + w.size() <= buf.data() + buf.size()));
  BOOST_TEST(reinterpret_cast<uintptr_t>(w.data()) % 8 == 0u);
  // The array keeps the message bytes alive after the buffer handle is gone.
  auto keep = w;
  buf = buffer{};
  out = decode(encode(in).value());
  BOOST_TEST(keep.size() == 16u);
}

BOOST_AUTO_TEST_CASE(chunked_arrays_round_trip_byte_exact) {
  codec_options opts;
  opts.chunk_size = 64;  // exercise chunking on a small array
  std::vector<float> values(1001);
  std::iota(values.begin(), values.end(), -500.f);
  record_dict content;
  content.insert_or_assign(
      "arrays", array_record{{"x", array::from_values(dtype::float32, {7, 11, 13}, values)}});
  auto in = make_reply(sample_message(), content);
  auto buf = encode(in, opts);
  BOOST_REQUIRE(buf);
  auto out = decode(*buf, opts);
  BOOST_REQUIRE(out);
  BOOST_TEST((*out == in));
  // Chunks of one message are laid out back to back, so still no copy.
  auto& x = out->content().arrays("arrays")->get("x")->bytes();
  BOOST_TEST((x.data() >= buf->data() && x.data() < buf->data() + buf->size()));
  opts.chunk_size = 12;
  BOOST_TEST(!encode(in, opts));
}

namespace {

// The number of segments a flat Cap'n Proto stream declares.
uint32_t segment_count(const buffer& b) {
  uint32_t n;
  std::memcpy(&n, b.data(), 4);
  return n + 1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(large_arrays_are_referenced_then_copied_once_with_zero_padding) {
  // The odd array is a slice of a larger buffer whose following bytes are
  // not zero: a pad copied from past the array's end would show them.
  const int64_t odd = 16385;  // 65,540 bytes: half a word short
  auto [backing, raw] = buffer::allocate(static_cast<size_t>(odd) * 4 + 64);
  std::memset(raw, 0xff, backing.size());
  for (int64_t i = 0; i < odd; ++i) {
    float v = static_cast<float>(i) * 0.5f;
    std::memcpy(raw + 4 * i, &v, 4);
  }
  std::vector<double> wide(20000);
  std::iota(wide.begin(), wide.end(), -3.0);
  record_dict content;
  content.insert_or_assign(
      "arrays", array_record{{"odd", *array::make(dtype::float32, {odd}, backing.slice(0, odd * 4))},
                             {"small", array::from_values(dtype::float32, {2}, std::vector<float>{1, 2})},
                             {"wide", array::from_values(dtype::float64, {100, 200}, wide)}});
  auto in = make_reply(sample_message(), content);
  auto enc = encode(in);
  BOOST_REQUIRE(enc);
  BOOST_TEST(segment_count(*enc) == 3u);  // metadata and small array, then one per large array
  auto out = decode(*enc);
  BOOST_REQUIRE(out);
  BOOST_TEST((*out == in));
  auto& got = out->content().arrays("arrays")->get("odd")->bytes();
  BOOST_TEST((got.data() >= enc->data() && got.data() + got.size() <= enc->data() + enc->size()));
  for (size_t k = got.size(); k % 8 != 0; ++k) BOOST_TEST((got.data()[k] == std::byte{0}));
  // The same bytes however often the message is encoded.
  BOOST_TEST((*encode(in) == *enc));
}

BOOST_AUTO_TEST_CASE(past_the_segment_budget_large_arrays_are_copied) {
  codec_options opts;
  opts.chunk_size = 8192;  // 128 chunks a MiB: five such arrays exceed the budget
  array_record arrays;
  for (int k = 0; k < 5; ++k) {
    std::vector<float> v(size_t{1} << 18);
    std::iota(v.begin(), v.end(), static_cast<float>(k));
    arrays.insert_or_assign("a" + std::to_string(k),
                            array::from_values(dtype::float32, {static_cast<int64_t>(v.size())}, v));
  }
  record_dict content;
  content.insert_or_assign("arrays", arrays);
  auto in = make_reply(sample_message(), content);
  auto enc = encode(in, opts);
  BOOST_REQUIRE(enc);
  BOOST_TEST(segment_count(*enc) <= 512u);
  BOOST_TEST(segment_count(*enc) > 1u);
  auto out = decode(*enc, opts);
  BOOST_REQUIRE(out);
  BOOST_TEST((*out == in));
}

BOOST_AUTO_TEST_CASE(parts_join_to_the_same_bytes_and_reference_the_arrays) {
  auto join = [](const std::vector<buffer>& parts) {
    std::vector<std::byte> out;
    for (auto& p : parts) out.insert(out.end(), p.data(), p.data() + p.size());
    return out;
  };
  auto same = [](const std::vector<std::byte>& a, const buffer& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
  };
  // Small: one part, the flat encoding.
  auto small = sample_message();
  auto flat = encode(small);
  auto parts = encode_parts(small);
  BOOST_REQUIRE(flat && parts);
  BOOST_TEST(parts->size() == 1u);
  BOOST_TEST(same(join(*parts), *flat));
  // Large arrays, one of them half a word short and in a buffer whose next
  // bytes are not zero, another in several chunks: the parts are the arrays'
  // own bytes, padded with zeros, and join to exactly what encode gives.
  const int64_t odd = 16385;
  auto [backing, raw] = buffer::allocate(static_cast<size_t>(odd) * 4 + 64);
  std::memset(raw, 0xff, backing.size());
  for (int64_t i = 0; i < odd; ++i) {
    float v = static_cast<float>(i) * 0.25f;
    std::memcpy(raw + 4 * i, &v, 4);
  }
  std::vector<float> big(size_t{1} << 17);
  std::iota(big.begin(), big.end(), 1.0f);
  auto odd_array = *array::make(dtype::float32, {odd}, backing.slice(0, odd * 4));
  auto big_array = array::from_values(dtype::float32, {static_cast<int64_t>(big.size())}, big);
  record_dict content;
  content.insert_or_assign("arrays", array_record{{"odd", odd_array},
                                                  {"small", array::from_values(dtype::float32, {2},
                                                                               std::vector<float>{1, 2})},
                                                  {"big", big_array}});
  auto in = make_reply(sample_message(), content);
  codec_options opts;
  opts.chunk_size = 128 << 10;  // the big array in four chunks
  flat = encode(in, opts);
  parts = encode_parts(in, opts);
  BOOST_REQUIRE(flat && parts);
  BOOST_TEST(same(join(*parts), *flat));
  auto refers_to = [&](const array& a) {
    for (auto& p : *parts)
      if (p.data() == a.data()) return true;
    return false;
  };
  BOOST_TEST(refers_to(odd_array));
  BOOST_TEST(refers_to(big_array));
  auto joined = join(*parts);
  auto out = decode(buffer::copy_of(joined.data(), joined.size()), opts);
  BOOST_REQUIRE(out);
  BOOST_TEST((*out == in));
  // A round's shared content alone, the same way.
  auto content_flat = encode_content(in.content(), opts);
  auto content_parts = encode_content_parts(in.content(), opts);
  BOOST_REQUIRE(content_flat && content_parts);
  BOOST_TEST(content_parts->size() > 1u);
  BOOST_TEST(same(join(*content_parts), *content_flat));
  // Over the size limit: refused like encode.
  opts.max_message_size = 100000;
  BOOST_TEST(!encode_parts(in, opts));
  BOOST_TEST(!encode_content_parts(in.content(), opts));
}

BOOST_AUTO_TEST_CASE(header_and_shared_content_round_trip) {
  auto in = sample_message();
  auto content = encode_content(in.content());
  auto header = encode_header(in);
  BOOST_REQUIRE(content.has_value());
  BOOST_REQUIRE(header.has_value());
  BOOST_TEST(header->size() < 1024u);  // metadata only
  auto out = decode(*header, *content);
  BOOST_REQUIRE_MESSAGE(out.has_value(), (out ? std::string{} : out.error().to_string()));
  BOOST_TEST((*out == in));
  // Arrays are slices of the shared content part.
  auto& w = out->content().arrays("arrays")->get("w")->bytes();
  BOOST_TEST((w.data() >= content->data() && w.data() < content->data() + content->size()));
  // Another instruction with the same content reuses the same part.
  auto other = make_instruction(in.content(), "train", 9);
  auto out2 = decode(*encode_header(*other), *content);
  BOOST_REQUIRE(out2.has_value());
  BOOST_TEST(out2->meta().dst_node_id == 9u);
  // A header without its content part is incomplete.
  auto alone = decode(*header);
  BOOST_REQUIRE(!alone.has_value());
  BOOST_TEST(alone.error().what.find("neither content nor an error") != std::string::npos);
  // Content both inline and apart, or beside an error, is rejected.
  auto twice = decode(*encode(in), *content);
  BOOST_REQUIRE(!twice.has_value());
  BOOST_TEST(twice.error().what.find("in its header and as a separate part") != std::string::npos);
  auto err = make_error_reply(in, {error_code::unknown, "x"});
  auto with_err = decode(*encode_header(err), *content);
  BOOST_REQUIRE(!with_err.has_value());
  BOOST_TEST(with_err.error().what.find("both content and an error") != std::string::npos);
  // A corrupt content part is reported as such.
  auto bad = decode(*header, content->slice(0, content->size() - 8));
  BOOST_TEST(!bad.has_value());
}

BOOST_AUTO_TEST_CASE(size_limit_is_enforced_both_ways) {
  codec_options small;
  small.max_message_size = 4096;
  record_dict content;
  content.insert_or_assign(
      "arrays", array_record{{"x", array::from_values(dtype::uint8, {8192}, std::vector<uint8_t>(8192))}});
  auto in = make_reply(sample_message(), content);
  auto enc = encode(in, small);
  BOOST_REQUIRE(!enc);
  BOOST_TEST(enc.error().code == errc::message_too_large);
  auto big = encode(in);
  BOOST_REQUIRE(big);
  auto dec = decode(*big, small);
  BOOST_REQUIRE(!dec);
  BOOST_TEST(dec.error().code == errc::message_too_large);
}

#ifndef STAMEN_UNDER_SANITIZER
namespace {

size_t available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

void big_round_trip(size_t n) {
  auto [buf, out] = buffer::allocate(n);
  for (size_t i = 0; i < n; i += 4093) out[i] = static_cast<std::byte>(i * 31);
  out[n - 1] = std::byte{0x5a};
  record_dict content;
  content.insert_or_assign(
      "arrays", array_record{{"big", *array::make(dtype::uint8, {static_cast<int64_t>(n)}, buf)}});
  auto in = make_reply(sample_message(), std::move(content));
  auto enc = encode(in);
  BOOST_REQUIRE(enc);
  auto dec = decode(*enc);
  BOOST_REQUIRE_MESSAGE(dec.has_value(), (dec ? std::string{} : dec.error().to_string()));
  auto& got = dec->content().arrays("arrays")->get("big")->bytes();
  BOOST_TEST(got.size() == n);
  BOOST_TEST((got == buf));
  BOOST_TEST((got.data() >= enc->data() && got.data() < enc->data() + enc->size()));
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_100_mb) { big_round_trip(size_t{100} << 20); }

BOOST_AUTO_TEST_CASE(round_trip_over_512_mib_chunked) {
  size_t n = (size_t{600} << 20) + 13;
  if (available_memory() < 4 * n) {
    BOOST_TEST_MESSAGE("skipped: needs about 2.4 GB of free memory");
    return;
  }
  big_round_trip(n);
}
#endif

BOOST_AUTO_TEST_SUITE_END()
