// The manual's custom strategy (docs/examples/norm_bounded_avg.hpp) builds
// from the public helpers alone, works, and is the code the manual shows.
#include "docs/examples/norm_bounded_avg.hpp"

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

#include "tests/support/scripted_grid.hpp"

using namespace stamen;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

array_record one(double v) {
  array_record r;
  r.insert_or_assign("w", array::from_values(dtype::float64, {2}, std::vector<double>{v, v}));
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(custom_strategy)

BOOST_AUTO_TEST_CASE(norm_bounded_avg_refuses_long_updates_and_averages_the_rest) {
  // Node k moves both coordinates by k: update norm k * sqrt(2).
  auto app = std::make_shared<client_app>();
  app->train([](const message& msg, context& ctx) {
    auto w = msg.content().arrays("arrays")->get("w")->to_vector<double>()[0];
    record_dict r;
    r.insert_or_assign("arrays", one(w + static_cast<double>(ctx.node_id)));
    r.insert_or_assign("metrics", metric_record{{"num-examples", static_cast<int64_t>(ctx.node_id)}});
    return make_reply(msg, r);
  });
  app->evaluate([](const message& msg, context&) {
    return make_reply(msg, record_dict{{"metrics", metric_record{{"num-examples", int64_t{1}}}}});
  });
  fed_avg_options o;
  o.seed = 1;
  norm_bounded_avg s(o, 3.0);  // nodes 1 and 2 fit (1.41, 2.83); 3 and 4 do not
  test::scripted_grid grid(4, app);
  auto result = s.start(grid, one(0), 1, 10);
  BOOST_TEST(result.train_rounds.at(0).results == 2u);
  BOOST_TEST(result.train_rounds.at(0).failures == 2u);
  BOOST_TEST(result.train_rounds.at(0).failure_reasons.at(0).find("exceeds the bound 3") !=
             std::string::npos);
  // (1 * 1 + 2 * 2) / (1 + 2)
  BOOST_TEST(result.arrays.get("w")->to_vector<double>()[0] == 5.0 / 3.0,
             boost::test_tools::tolerance(1e-12));
  auto lines = s.summary(1, one(0), {}, {});
  BOOST_TEST(lines.at(1) == "    ├──> NormBoundedAvg settings:");
}

BOOST_AUTO_TEST_CASE(the_manual_shows_this_very_code) {
  auto page = slurp(std::string{STAMEN_SOURCE_DIR} + "/docs/manual/strategies.md");
  auto code = slurp(std::string{STAMEN_SOURCE_DIR} + "/docs/examples/norm_bounded_avg.hpp");
  BOOST_REQUIRE(!code.empty());
  BOOST_TEST(page.find(code) != std::string::npos,
             "docs/manual/strategies.md must quote docs/examples/norm_bounded_avg.hpp verbatim");
}

BOOST_AUTO_TEST_SUITE_END()
