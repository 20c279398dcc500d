// `stamen report`: a self-contained report.html from results written here
// by hand, whose charts carry exactly the numbers of the JSON.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "tests/support/shell.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json result(double acc0, const std::string& reason) {
  json rounds = json::array();
  for (int r = 1; r <= 3; ++r)
    rounds.push_back({{"round", r},
                      {"train", {{"sampled", 4}, {"results", r == 2 ? 3 : 4}, {"failures", r == 2 ? 1 : 0},
                                 {"failure_reasons", r == 2 ? json::array({reason}) : json::array()},
                                 {"seconds", 0.5 * r}, {"metrics", {{"train_loss", 1.0 / r}}}}},
                      {"evaluate", {{"sampled", 4}, {"results", 4}, {"failures", 0}, {"failure_reasons", json::array()},
                                    {"seconds", 0.1 * r}, {"metrics", {{"eval_acc", acc0 + 0.1 * r}, {"eval_loss", 2.0 - 0.3 * r}}}}}});
  return {{"rounds", rounds}, {"seconds", 2.5}, {"stopped", false},
          {"faults", json::array({{{"round", 2}, {"node", 1}, {"node_id", 77}, {"action", "crash"}, {"phase", "train"}}})},
          {"run_config", {{"num-server-rounds", 3}, {"strategy", "fedavg"}}},
          {"federation", {{"name", "local-simulation"}, {"num-supernodes", 4}}}};
}

std::string unescape(std::string s) {
  for (auto [from, to] : {std::pair{"&quot;", "\""}, std::pair{"&#39;", "'"}, std::pair{"&lt;", "<"},
                          std::pair{"&gt;", ">"}, std::pair{"&amp;", "&"}}) {
    size_t at = 0;
    while ((at = s.find(from, at)) != std::string::npos) s.replace(at, std::strlen(from), to), at += std::strlen(to);
  }
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(report)

BOOST_AUTO_TEST_CASE(a_report_is_self_contained_and_its_charts_hold_the_json_numbers) {
  auto dir = fs::temp_directory_path() / ("stamen-report-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream{dir / "fedavg.json"} << result(0.5, "node 9: error 2: <script>alert(1)</script>").dump();
  std::ofstream{dir / "fedmedian.json"} << result(0.6, "node 3: no reply within the timeout of 1.00s").dump();
  auto r = stamen::test::shell(std::string{STAMEN_BIN} + " report " + (dir / "fedavg.json").string() + " " +
                                   (dir / "fedmedian.json").string() + " --out " + (dir / "out").string(),
                               dir);
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  auto html = stamen::test::slurp(dir / "out" / "report.html");
  BOOST_TEST(html.rfind("<!DOCTYPE html>", 0) == 0u);
  BOOST_TEST(html.find("</html>") != std::string::npos);
  // One chart per metric, then replies and round time; each also a file.
  std::regex figure{"<figure id=\"([^\"]+)\" data-series='([^']*)'>"};
  std::map<std::string, json> charts;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), figure); it != std::sregex_iterator(); ++it)
    charts[(*it)[1]] = json::parse(unescape((*it)[2]));
  BOOST_TEST(charts.size() == 5u);
  for (auto* id : {"evaluate-eval_acc", "evaluate-eval_loss", "train-train_loss", "replies", "round-time"}) {
    BOOST_REQUIRE_MESSAGE(charts.count(id) == 1, id);
    auto svg = stamen::test::slurp(dir / "out" / (std::string{id} + ".svg"));
    BOOST_TEST(svg.find("<svg") != std::string::npos, id);
    BOOST_TEST(svg.find("<path") != std::string::npos, id);
  }
  // The numbers in the charts are the JSON's, one line per result.
  auto acc = charts["evaluate-eval_acc"];
  BOOST_TEST(acc.size() == 2u);
  for (int round = 1; round <= 3; ++round) {
    BOOST_TEST(acc["fedavg"][round - 1][0].get<double>() == round);
    BOOST_TEST(acc["fedavg"][round - 1][1].get<double>() == 0.5 + 0.1 * round);
    BOOST_TEST(acc["fedmedian"][round - 1][1].get<double>() == 0.6 + 0.1 * round);
  }
  BOOST_TEST(charts["replies"]["fedavg failures"][1][1].get<double>() == 1);
  // Nothing to fetch: only the SVG namespaces name a URL, and the failure
  // reason is text, not markup.
  std::regex url{"https?://[^\"' <>]+"};
  for (auto it = std::sregex_iterator(html.begin(), html.end(), url); it != std::sregex_iterator(); ++it) {
    auto u = it->str();
    BOOST_TEST((u == "http://www.w3.org/2000/svg" || u == "http://www.w3.org/1999/xlink"), u);
  }
  BOOST_TEST(html.find("<script") == std::string::npos);
  BOOST_TEST(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  BOOST_TEST(html.find("crash") != std::string::npos);   // the faults table
  BOOST_TEST(html.find("fedavg") != std::string::npos);  // the config tables
  // Not a result: refused, naming the file.
  std::ofstream{dir / "bad.json"} << "{\"hello\": 1}";
  auto bad = stamen::test::shell(std::string{STAMEN_BIN} + " report " + (dir / "bad.json").string(), dir);
  BOOST_TEST(bad.code == 2);
  BOOST_TEST(bad.err.find("bad.json' is not a result") != std::string::npos, bad.err);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
