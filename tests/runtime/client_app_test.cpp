#include "runtime/client_app.hpp"

#include <boost/test/unit_test.hpp>

using namespace stamen;

namespace {

message instruction(const std::string& type) {
  auto m = make_instruction({}, type, 7);
  m->meta().message_id = "i-1";
  return *m;
}

message reply_with(const message& in, const std::string& key, int64_t value) {
  record_dict c;
  c.insert_or_assign("metrics", metric_record{{key, value}});
  return make_reply(in, c);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(client_app_suite)

BOOST_AUTO_TEST_CASE(handlers_by_type_and_action) {
  client_app app;
  app.train([](const message& m, context&) { return reply_with(m, "which", 1); });
  app.train("custom", [](const message& m, context&) { return reply_with(m, "which", 2); });
  app.query([](const message& m, context&) { return reply_with(m, "which", 3); });
  context ctx;
  auto get = [&](const std::string& type) {
    auto r = app.handle(instruction(type), ctx);
    BOOST_REQUIRE(r.has_content());
    return std::get<int64_t>(*r.content().metrics("metrics")->get("which"));
  };
  BOOST_TEST(get("train") == 1);
  BOOST_TEST(get("train.custom") == 2);
  BOOST_TEST(get("query") == 3);
  auto r = app.handle(instruction("evaluate"), ctx);
  BOOST_REQUIRE(r.has_error());
  BOOST_TEST(r.error().code == error_code::client_app_raised);
  BOOST_TEST(r.error().reason.find("'evaluate'") != std::string::npos);
  BOOST_TEST(r.meta().reply_to_message_id == "i-1");
  BOOST_CHECK_THROW(app.train("bad action", [](const message& m, context&) { return m; }),
                    std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(mods_run_outermost_first) {
  std::vector<std::string> trace;
  auto tag = [&trace](std::string name) {
    return [&trace, name](const message& m, context& c, const handler& next) {
      trace.push_back(name + ">");
      auto r = next(m, c);
      trace.push_back("<" + name);
      return r;
    };
  };
  client_app app({tag("app1"), tag("app2")});
  app.train(
      [&](const message& m, context&) {
        trace.push_back("handler");
        return make_reply(m, {});
      },
      {tag("h1")});
  context ctx;
  app.handle(instruction("train"), ctx);
  BOOST_TEST(trace == (std::vector<std::string>{"app1>", "app2>", "h1>", "handler", "<h1", "<app2",
                                                "<app1"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_mod_can_short_circuit) {
  client_app app({[](const message& m, context&, const handler&) {
    return make_error_reply(m, {error_code::mod_failed_precondition, "not today"});
  }});
  app.train([](const message& m, context&) -> message { throw std::runtime_error("unreached"); });
  context ctx;
  auto r = app.handle(instruction("train"), ctx);
  BOOST_REQUIRE(r.has_error());
  BOOST_TEST(r.error().code == error_code::mod_failed_precondition);
}

BOOST_AUTO_TEST_CASE(state_persists_and_a_throwing_handler_discards_its_changes) {
  client_app app;
  app.train([](const message& m, context& ctx) {
    auto& counter = std::get<metric_record>(ctx.state["counter"]);
    auto n = counter.contains("n") ? std::get<int64_t>(*counter.get("n")) : 0;
    counter.insert_or_assign("n", n + 1);
    if (n + 1 == 2) throw std::runtime_error("second call fails");
    return reply_with(m, "n", n + 1);
  });
  context ctx;
  ctx.state.insert_or_assign("counter", metric_record{});
  auto r1 = app.handle(instruction("train"), ctx);
  BOOST_TEST(std::get<int64_t>(*r1.content().metrics("metrics")->get("n")) == 1);
  auto r2 = app.handle(instruction("train"), ctx);
  BOOST_REQUIRE(r2.has_error());
  BOOST_TEST(r2.error().code == error_code::client_app_raised);
  BOOST_TEST(r2.error().reason == "second call fails");
  // The failed call's increment was discarded, so the next call sees 1 again.
  BOOST_TEST(std::get<int64_t>(*ctx.state.metrics("counter")->get("n")) == 1);
  auto r3 = app.handle(instruction("train"), ctx);
  BOOST_TEST(r3.has_error());  // n + 1 == 2 again
}

BOOST_AUTO_TEST_CASE(reply_metadata_is_fixed_up) {
  client_app app;
  app.query([](const message&, context&) {
    auto m = make_instruction({}, "train", 99);  // not a reply at all
    return *m;
  });
  context ctx;
  auto in = instruction("query");
  auto r = app.handle(in, ctx);
  BOOST_TEST(r.meta().reply_to_message_id == "i-1");
  BOOST_TEST(r.meta().dst_node_id == server_node_id);
  BOOST_TEST(r.meta().src_node_id == 7u);
  BOOST_TEST(r.meta().message_type == "query");
}

BOOST_AUTO_TEST_SUITE_END()
