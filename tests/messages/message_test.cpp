#include "messages/message.hpp"

#include <boost/test/unit_test.hpp>

using namespace stamen;

BOOST_AUTO_TEST_SUITE(message_suite)

BOOST_AUTO_TEST_CASE(message_types) {
  for (auto t : {"train", "evaluate", "query", "train.custom", "query.get-weights", "evaluate.a_1"})
    BOOST_TEST(static_cast<bool>(validate_message_type(t)), t);
  for (auto t : {"", "fit", "train.", "train.a.b", "Train", "query.bad action", ".train"}) {
    auto r = validate_message_type(t);
    BOOST_TEST(!r, t);
    if (!r) BOOST_TEST(r.error().code == errc::invalid_message);
  }
  BOOST_TEST(message_category("train.custom") == "train");
  BOOST_TEST(!make_instruction({}, "fit", 7));
}

BOOST_AUTO_TEST_CASE(reply_mirrors_instruction) {
  auto in = make_instruction({}, "train.custom", 42, "round-3", 60.0, 9);
  BOOST_REQUIRE(in);
  in->meta().message_id = "m-1";
  record_dict content;
  content.insert_or_assign("metrics", metric_record{{"loss", 0.5}});
  auto reply = make_reply(*in, content);
  auto& m = reply.meta();
  BOOST_TEST(m.src_node_id == 42u);
  BOOST_TEST(m.dst_node_id == server_node_id);
  BOOST_TEST(m.run_id == 9u);
  BOOST_TEST(m.group_id == "round-3");
  BOOST_TEST(m.message_type == "train.custom");
  BOOST_TEST(m.reply_to_message_id == "m-1");
  BOOST_TEST(m.ttl <= 60.0);
  BOOST_TEST(m.ttl > 59.0);
  BOOST_TEST(reply.has_content());

  auto err = make_error_reply(*in, {error_code::client_app_raised, "boom"});
  BOOST_TEST(err.has_error());
  BOOST_TEST(err.error().code == error_code::client_app_raised);
  BOOST_TEST(err.meta().reply_to_message_id == "m-1");
}

BOOST_AUTO_TEST_CASE(records_print_like_flower) {
  metric_record m{{"train_loss", 0.25}, {"num-examples", int64_t{4800}}};
  BOOST_TEST(to_string(m) == "{'train_loss': 0.25, 'num-examples': 4800}");
  config_record c{{"lr", 0.01}, {"name", std::string{"x"}}, {"on", true},
                  {"xs", std::vector<int64_t>{1, 2}}};
  BOOST_TEST(to_string(c) == "{'lr': 0.01, 'name': 'x', 'on': True, 'xs': [1, 2]}");
}

BOOST_AUTO_TEST_SUITE_END()
