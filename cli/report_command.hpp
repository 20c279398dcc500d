#pragma once

// `stamen report` and `stamen run --report`: one self-contained report.html
// (no network fetches; it opens from disk) with a run's config, a chart per
// metric over the rounds (several results side by side), results and
// failures per round with the reasons, round time per phase and the faults
// injected. Charts are drawn by gnuplot's SVG terminal (Debian's
// gnuplot-nox), inlined in the page and also written beside it.

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/expected.hpp"

namespace stamen {

/// A result to report: a label (a file's name, say) and the JSON that
/// `stamen run --format json` prints.
using labelled_result = std::pair<std::string, nlohmann::json>;

/// Writes `dir`/report.html, one SVG per chart and the charts' data files.
expected<void> write_report(const std::vector<labelled_result>& results, const std::filesystem::path& dir);

struct report_command {
  /// JSON files from `stamen run --format json`, or ids of cluster runs
  /// (whose results come from the superlink the app's federation names).
  std::vector<std::string> results;
  std::string out = "report";
  std::string app_dir = ".";
  std::string federation;
  std::vector<std::string> federation_config;
};

/// Returns the exit code (0 written; 1 a result or gnuplot failed; 2 bad input).
int run_report(const report_command& cmd);

}  // namespace stamen
