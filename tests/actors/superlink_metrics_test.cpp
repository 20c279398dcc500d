// The superlink's Prometheus exposition on its own: cumulative buckets,
// sums and counts, and failure reasons folded into a few label values.
#include <boost/test/unit_test.hpp>

#include "actors/superlink_metrics.hpp"

using namespace stamen;

BOOST_AUTO_TEST_SUITE(superlink_metrics_suite)

BOOST_AUTO_TEST_CASE(histogram_buckets_are_cumulative_with_sum_and_count) {
  histogram h;
  for (double x : {0.003, 0.07, 0.07, 2.0, 1000.0}) h.observe(x);
  auto text = h.render("x_seconds", "help");
  BOOST_TEST(text.find("# TYPE x_seconds histogram\n") != std::string::npos);
  BOOST_TEST(text.find("x_seconds_bucket{le=\"0.005\"} 1\n") != std::string::npos, text);
  BOOST_TEST(text.find("x_seconds_bucket{le=\"0.1\"} 3\n") != std::string::npos);
  BOOST_TEST(text.find("x_seconds_bucket{le=\"5\"} 4\n") != std::string::npos);
  BOOST_TEST(text.find("x_seconds_bucket{le=\"300\"} 4\n") != std::string::npos);
  BOOST_TEST(text.find("x_seconds_bucket{le=\"+Inf\"} 5\n") != std::string::npos);
  BOOST_TEST(text.find("x_seconds_count 5\n") != std::string::npos);
  BOOST_TEST(text.find("x_seconds_sum 1002.143") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(failure_reasons_become_a_few_labels) {
  BOOST_TEST(superlink_metrics::reason_label("node 7: no reply within the timeout of 2.00s") == "timeout");
  BOOST_TEST(superlink_metrics::reason_label("node 7: error 2: cannot load app library") == "error");
  BOOST_TEST(superlink_metrics::reason_label("node 7: rejected: NaN in w") == "rejected");
  BOOST_TEST(superlink_metrics::reason_label("node 7: duplicate reply") == "duplicate");
  BOOST_TEST(superlink_metrics::reason_label("node 7: reply from a node that was not sampled") == "unexpected");
  BOOST_TEST(superlink_metrics::reason_label("anything else") == "other");
  superlink_metrics m;
  m.reply("train", "");
  m.reply("train", "node 1: no reply within the timeout of 1.00s");
  m.reply("train", "node 2: no reply within the timeout of 1.00s");
  m.round_completed(0.5);
  auto text = m.render(3, {{"running", 1}});
  BOOST_TEST(text.find("stamen_reply_failures_total{phase=\"train\",reason=\"timeout\"} 2\n") != std::string::npos, text);
  BOOST_TEST(text.find("stamen_replies_total{phase=\"train\"} 1\n") != std::string::npos);
  BOOST_TEST(text.find("stamen_nodes_connected 3\n") != std::string::npos);
  BOOST_TEST(text.find("stamen_runs{status=\"running\"} 1\n") != std::string::npos);
  BOOST_TEST(text.find("stamen_runs{status=\"pending\"} 0\n") != std::string::npos);
  BOOST_TEST(text.find("stamen_rounds_completed_total 1\n") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
