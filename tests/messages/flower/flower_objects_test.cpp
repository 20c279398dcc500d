// Stamen's Flower objects against what a real Flower 1.23 makes of the same
// messages (flower_fixtures.json, recorded by tests/interop/record_flower_fixtures.py):
// the same ids and bytes out, the same values in, and bad objects refused
// with a reason that names what is wrong.
#define BOOST_TEST_MODULE stamen_flower_messages
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "messages/flower/flower_objects.hpp"
#include "messages/flower/flower_records.hpp"

using namespace stamen;
using namespace stamen::flower;

namespace {

const nlohmann::json& fixtures() {
  static const nlohmann::json j = [] {
    std::ifstream in(STAMEN_FLOWER_FIXTURES);
    BOOST_REQUIRE_MESSAGE(in, "cannot read " STAMEN_FLOWER_FIXTURES);
    return nlohmann::json::parse(in);
  }();
  return j;
}

const nlohmann::json& fixture(const std::string& name) {
  for (const auto& c : fixtures()["cases"])
    if (c["name"] == name) return c;
  BOOST_FAIL("no fixture " + name);
  throw;
}

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

nlohmann::json tree_json(const object_tree& t) {
  nlohmann::json children = nlohmann::json::array();
  for (const auto& c : t.children) children.push_back(tree_json(c));
  return {{"id", t.id}, {"children", children}};
}

metadata meta(std::string type = "train", std::string group = "") {
  metadata m;
  m.run_id = 1234;
  m.src_node_id = 1;
  m.dst_node_id = 5678;
  m.created_at = 1750000000.0;
  m.ttl = 43200.0;
  m.message_type = std::move(type);
  m.group_id = std::move(group);
  return m;
}

message train_case() {
  record_dict rd;
  rd.insert_or_assign("arrays", array_record{{"w", array::from_values(dtype::float32, {2, 3}, std::vector<float>{0, 1, 2, 3, 4, 5})}});
  rd.insert_or_assign("metrics", metric_record{{"num-examples", int64_t{100}}, {"train_loss", 0.5}});
  rd.insert_or_assign("config", config_record{{"lr", 0.01}, {"server-round", int64_t{1}}});
  return message(meta(), rd);
}

message dtypes_case() {
  array_record ar;
  ar.insert_or_assign("f32", array::from_values(dtype::float32, {2}, std::vector<float>{1.5f, -2.25f}));
  ar.insert_or_assign("f64", array::from_values(dtype::float64, {3, 1}, std::vector<double>{1, 2, 3}));
  ar.insert_or_assign("i64", array::from_values(dtype::int64, {2}, std::vector<int64_t>{-(int64_t{1} << 62), 7}));
  ar.insert_or_assign("i32", array::from_values(dtype::int32, {2, 2}, std::vector<int32_t>{1, 2, 3, 4}));
  ar.insert_or_assign("u8", array::from_values(dtype::uint8, {3}, std::vector<uint8_t>{0, 255, 17}));
  ar.insert_or_assign("bool", array::from_values(dtype::bool_, {3}, std::vector<uint8_t>{1, 0, 1}));
  ar.insert_or_assign("f16", array::from_values(dtype::float16, {2}, std::vector<uint16_t>{0x3800, 0x3c00}));
  ar.insert_or_assign("i8", array::from_values(dtype::int8, {2}, std::vector<int8_t>{-128, 127}));
  ar.insert_or_assign("i16", array::from_values(dtype::int16, {2}, std::vector<int16_t>{-300, 300}));
  ar.insert_or_assign("scalar", array::from_values(dtype::float32, {}, std::vector<float>{3.5f}));
  ar.insert_or_assign("empty", array::from_values(dtype::float32, {0, 4}, std::vector<float>{}));
  ar.insert_or_assign("again", array::from_values(dtype::float32, {2}, std::vector<float>{1.5f, -2.25f}));
  ar.insert_or_assign("long-first-axis", array::from_values(dtype::float32, {1234567, 0}, std::vector<float>{}));
  record_dict rd;
  rd.insert_or_assign("arrays", ar);
  return message(meta("evaluate", "3"), rd);
}

message values_case() {
  config_record c{{"int", int64_t{-5}},
                  {"big", int64_t{9223372036854775807}},
                  {"float", 0.1},
                  {"bool", true},
                  {"str", std::string("h\xc3\xa9llo \"q\" \\ \n")},
                  {"bytes", bytes{0x00, 0xff}},
                  {"ints", std::vector<int64_t>{1, -2}},
                  {"floats", std::vector<double>{0.5, 1e300}},
                  {"bools", std::vector<bool>{true, false}},
                  {"strs", std::vector<std::string>{"a", ""}},
                  {"bytess", std::vector<bytes>{bytes{'x'}, bytes{}}}};
  metric_record m{{"int", int64_t{3}}, {"float", -0.75}, {"ints", std::vector<int64_t>{4, 5}},
                  {"floats", std::vector<double>{0.25}}};
  record_dict rd;
  rd.insert_or_assign("config", c);
  rd.insert_or_assign("metrics", m);
  rd.insert_or_assign("cl\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80", config_record{{"k", int64_t{1}}});
  return message(meta("query.custom"), rd);
}

message error_case() {
  auto m = meta();
  m.src_node_id = 5678;
  m.dst_node_id = 1;
  m.reply_to_message_id = std::string(64, 'a');
  for (size_t i = 1; i < 64; i += 2) m.reply_to_message_id[i] = 'b';
  m.created_at = 1750000010.0;
  m.ttl = 43190.0;
  return message(m, message_error{2, "<class 'ValueError'>:<'boom'>"});
}

message chunked_case() {
  std::vector<uint8_t> big(6 * 1024 * 1024);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i % 251);
  record_dict rd;
  rd.insert_or_assign("arrays", array_record{{"big", array::from_values(dtype::uint8, {static_cast<int64_t>(big.size())}, big)}});
  return message(meta(), rd);
}

// Deflates `m`, checks ids, tree and every recorded byte against Flower's;
// then inflates Flower's objects (ours where Flower's were too large to keep,
// their ids being equal) and checks the values.
void check_case(const std::string& name, const message& m) {
  BOOST_TEST_CONTEXT("case " << name) {
    const auto& f = fixture(name);
    auto d = deflate(m);
    BOOST_REQUIRE_MESSAGE(d, (d ? "" : d.error().what));
    BOOST_TEST(d->tree.id == f["message_id"].get<std::string>());
    BOOST_TEST(tree_json(d->tree) == f["tree"]);
    BOOST_TEST(d->objects.size() == f["objects"].size());
    std::map<std::string, std::string> theirs;
    for (const auto& [id, hex] : f["objects"].items()) {
      BOOST_REQUIRE_MESSAGE(d->objects.count(id), "Flower's object " << id << " is not among Stamen's");
      if (hex.is_null()) {
        theirs.emplace(id, d->objects.at(id));
      } else {
        auto bytes = unhex(hex.get<std::string>());
        BOOST_TEST(d->objects.at(id) == bytes, "object " << id);
        theirs.emplace(id, bytes);
      }
    }
    auto back = inflate(f["message_id"].get<std::string>(), theirs);
    BOOST_REQUIRE_MESSAGE(back, (back ? "" : back.error().what));
    auto expected = m;
    expected.meta().message_id = f["message_id"].get<std::string>();
    BOOST_TEST((*back == expected));
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(flower_objects_suite)

BOOST_AUTO_TEST_CASE(fixtures_come_from_flower_1_23) {
  BOOST_TEST(fixtures()["flower"].get<std::string>() == "1.23.0");
  BOOST_TEST(fixtures()["cases"].size() == 6u);
}

BOOST_AUTO_TEST_CASE(a_train_reply_deflates_to_flowers_ids_and_bytes) { check_case("train", train_case()); }

BOOST_AUTO_TEST_CASE(every_numpy_dtype_a_scalar_an_empty_and_a_repeated_array) { check_case("dtypes", dtypes_case()); }

BOOST_AUTO_TEST_CASE(every_config_and_metric_value_type_and_keys_past_ascii) { check_case("values", values_case()); }

BOOST_AUTO_TEST_CASE(an_error_reply_and_empty_content) {
  check_case("error", error_case());
  check_case("empty", message(meta(), record_dict{}));
}

BOOST_AUTO_TEST_CASE(an_array_over_one_chunk_is_split_as_flower_splits_it) {
  auto m = chunked_case();
  check_case("chunked", m);
  auto d = deflate(m);
  BOOST_REQUIRE(d);
  // Message -> RecordDict -> ArrayRecord -> Array -> two chunks (5 MiB + the rest).
  const auto& a = d->tree.children.at(0).children.at(0).children.at(0);
  BOOST_TEST(a.children.size() == 2u);
  BOOST_TEST(parse_object(d->objects.at(a.children[0].id))->body.size() == max_chunk_bytes);
}

BOOST_AUTO_TEST_CASE(an_object_that_does_not_hash_to_its_id_is_refused) {
  const auto& f = fixture("train");
  std::map<std::string, std::string> objects;
  for (const auto& [id, hex] : f["objects"].items()) objects.emplace(id, unhex(hex.get<std::string>()));
  // Flip one byte of the array's data: its chunk no longer hashes to its id.
  auto chunk = f["tree"]["children"][0]["children"][0]["children"][0]["children"][0]["id"].get<std::string>();
  objects[chunk].back() ^= 1;
  auto m = inflate(f["message_id"].get<std::string>(), objects);
  BOOST_REQUIRE(!m);
  BOOST_TEST(m.error().what.find("does not hash to its id") != std::string::npos, m.error().what);
  BOOST_TEST(m.error().what.find("record 'arrays', array 'w'") != std::string::npos, m.error().what);
  // A missing object names what it is.
  objects.erase(chunk);
  m = inflate(f["message_id"].get<std::string>(), objects);
  BOOST_REQUIRE(!m);
  BOOST_TEST(m.error().what.find("is missing") != std::string::npos, m.error().what);
}

namespace {

// The train case with its array object replaced by `body` (and the parents
// rebuilt so that every id is right again): the array itself is what is bad.
expected<message> with_array_body(const std::string& body, const std::vector<std::string>& chunks) {
  auto d = deflate(train_case());
  auto array = make_object("Array", chunks, body);
  auto array_id = object_id(array);
  auto record = make_object("ArrayRecord", {array_id}, "{\"w\": \"" + array_id + "\"}");
  auto record_id = object_id(record);
  const auto& rd_tree = d->tree.children[0];
  auto rd = make_object("RecordDict", {record_id, rd_tree.children[1].id, rd_tree.children[2].id},
                        "{\"arrays\": \"" + record_id + "\", \"metrics\": \"" + rd_tree.children[1].id +
                            "\", \"config\": \"" + rd_tree.children[2].id + "\"}");
  auto rd_id = object_id(rd);
  auto msg = make_object("Message", {rd_id}, parse_object(d->objects.at(d->tree.id))->body);
  auto objects = d->objects;
  for (auto* x : {&array, &record, &rd, &msg}) objects[object_id(*x)] = *x;
  return inflate(object_id(msg), objects);
}

}  // namespace

BOOST_AUTO_TEST_CASE(arrays_stamen_cannot_represent_are_errors_that_name_the_key) {
  auto d = deflate(train_case());
  auto chunk = d->tree.children[0].children[0].children[0].children[0].id;
  auto fail_with = [&](const std::string& body, const std::string& expect) {
    auto m = with_array_body(body, {chunk});
    BOOST_REQUIRE_MESSAGE(!m, "accepted: " << body);
    BOOST_TEST(m.error().what.find("array 'w'") != std::string::npos, m.error().what);
    BOOST_TEST(m.error().what.find(expect) != std::string::npos, m.error().what);
  };
  fail_with("{\"dtype\": \"float32\", \"shape\": [2, 3], \"stype\": \"torch.Tensor\", \"arraychunk_ids\": [0]}",
            "stype 'torch.Tensor' is not supported");
  fail_with("{\"dtype\": \"float32\", \"shape\": [3, 2], \"stype\": \"numpy.ndarray\", \"arraychunk_ids\": [0]}",
            "disagrees with the .npy data");
  fail_with("{\"dtype\": \"int32\", \"shape\": [2, 3], \"stype\": \"numpy.ndarray\", \"arraychunk_ids\": [0]}",
            "dtype 'int32' disagrees");
  fail_with("{\"dtype\": \"float32\", \"shape\": [2, 3], \"stype\": \"numpy.ndarray\", \"arraychunk_ids\": [1]}",
            "chunk index 1 is past the children");
  fail_with("{\"dtype\": \"float32\"}", "lacks dtype, shape, stype or arraychunk_ids");
  fail_with("not json", "not a JSON object");
  // One chunk named a million times: refused before anything is assembled.
  std::string many = "[0";
  for (int i = 0; i < 1000000; ++i) many += ", 0";
  fail_with("{\"dtype\": \"float32\", \"shape\": [2, 3], \"stype\": \"numpy.ndarray\", \"arraychunk_ids\": " + many +
                "]}",
            "add up to more than");
}

BOOST_AUTO_TEST_CASE(npy_files_stamen_cannot_read_are_refused) {
  auto a = to_flower(array::from_values(dtype::float32, {2}, std::vector<float>{1, 2}));
  BOOST_REQUIRE(a);
  auto big_endian = *a;
  big_endian.data.replace(big_endian.data.find("<f4"), 3, ">f4");
  BOOST_TEST(from_flower(big_endian).error().what.find("'>f4' is not supported") != std::string::npos);
  auto truncated = *a;
  truncated.data.pop_back();
  BOOST_TEST(!from_flower(truncated));
  auto not_npy = *a;
  not_npy.data[1] = 'X';
  BOOST_TEST(from_flower(not_npy).error().what.find("not a .npy file") != std::string::npos);
  auto fortran = to_flower(array::from_values(dtype::float32, {2, 1}, std::vector<float>{1, 2}));
  fortran->data.replace(fortran->data.find("False"), 5, "True ");
  BOOST_TEST(from_flower(*fortran).error().what.find("Fortran") != std::string::npos);
  // And a round trip of every representable dtype.
  for (uint8_t i = 0; i < dtype_count; ++i) {
    auto t = static_cast<dtype>(i);
    auto x = array::make(t, {3}, buffer::copy_of("abcdefghijklmnopqrstuvwx", 3 * item_size(t)));
    BOOST_REQUIRE(x);
    auto f = to_flower(*x);
    if (t == dtype::bfloat16) {
      BOOST_TEST(!f);
      continue;
    }
    BOOST_REQUIRE(f);
    BOOST_TEST((*from_flower(*f) == *x));
  }
}

BOOST_AUTO_TEST_CASE(what_flower_cannot_carry_is_an_error_naming_the_key) {
  record_dict rd;
  rd.insert_or_assign("arrays", array_record{{"half", array::from_values(dtype::bfloat16, {1}, std::vector<uint16_t>{1})}});
  auto d = deflate(message(meta(), rd));
  BOOST_REQUIRE(!d);
  BOOST_TEST(d.error().what.find("record 'arrays': array 'half'") != std::string::npos, d.error().what);
  record_dict bad_key;
  bad_key.insert_or_assign("arrays", array_record{{"\xff", array::from_values(dtype::float32, {1}, std::vector<float>{1})}});
  d = deflate(message(meta(), bad_key));
  BOOST_REQUIRE(!d);
  BOOST_TEST(d.error().what.find("not valid UTF-8") != std::string::npos, d.error().what);
}

BOOST_AUTO_TEST_CASE(unsigned_values_past_int64_name_their_key) {
  // A ConfigRecord with {"u": uint64 2^63} as Flower writes ints past int64.
  std::string body = "\x0a\x10\x0a\x01u\x12\x0b\x18\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01";
  auto c = parse_config_record_body(body);
  BOOST_REQUIRE(!c);
  BOOST_TEST(c.error().what.find("'u'") != std::string::npos, c.error().what);
  // One that fits is taken.
  std::string fits = "\x0a\x07\x0a\x01u\x12\x02\x18\x07";
  auto ok = parse_config_record_body(fits);
  BOOST_REQUIRE(ok);
  BOOST_TEST(std::get<int64_t>(*ok->get("u")) == 7);
}

BOOST_AUTO_TEST_CASE(malformed_objects_say_what_is_wrong) {
  BOOST_TEST(parse_object("no divider").error().what.find("no NUL") != std::string::npos);
  BOOST_TEST(parse_object(std::string("Array  5\0abc", 12)).error().what.find("body is 3 bytes") != std::string::npos);
  BOOST_TEST(parse_object(std::string("Array xyz 0\0", 12)).error().what.find("not an object id") != std::string::npos);
  BOOST_TEST(parse_object(std::string("Array 0\0", 8)).error().what.find("<type> <children> <length>") != std::string::npos);
  // A Message object whose body is not a Message.
  auto msg = make_object("Message", {}, "\xff\xff\xff");
  std::map<std::string, std::string> objects{{object_id(msg), msg}};
  BOOST_TEST(!inflate(object_id(msg), objects));
  // A RecordDict where a Message should be.
  auto rd = make_object("RecordDict", {}, "{}");
  objects = {{object_id(rd), rd}};
  BOOST_TEST(inflate(object_id(rd), objects).error().what.find("is a RecordDict, not a Message") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(python_json_strings) {
  BOOST_TEST(*python_json_string("a\"b\\c\n") == "\"a\\\"b\\\\c\\n\"");
  BOOST_TEST(*python_json_string("\xc3\xa9") == "\"\\u00e9\"");
  BOOST_TEST(*python_json_string("\xf0\x9f\x98\x80") == "\"\\ud83d\\ude00\"");
  BOOST_TEST(*python_json_string(std::string("\x01\x7f", 2)) == "\"\\u0001\\u007f\"");
  BOOST_TEST(!python_json_string("\xc0\xaf"));  // overlong
}

BOOST_AUTO_TEST_SUITE_END()
