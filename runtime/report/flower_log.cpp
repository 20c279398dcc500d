#include "runtime/report/flower_log.hpp"

#include "runtime/format.hpp"

namespace stamen {

namespace {

// Flower prints per-round metrics in scientific notation, one round a line.
void log_metrics_history(const logger& log, const std::string& title,
                         const std::map<int, metric_record>& history) {
  log.info("    " + title + ":");
  if (history.empty()) {
    log.info("    {}");
    return;
  }
  size_t i = 0;
  for (auto& [round, rec] : history) {
    std::string line = (i == 0 ? "    { " : "      ") + std::to_string(round) + ": {";
    bool first = true;
    for (auto& [k, v] : rec) {
      double d;
      line += (first ? "'" : ", '") + k + "': ";
      line += metric_as_double(v, d) ? "'" + format_double("%.4e", d) + "'" : to_string(metric_record{{k, v}});
      first = false;
    }
    line += ++i == history.size() ? "}}" : "},";
    log.info(line);
  }
}

}  // namespace

void flower_log::on_start(const std::string&, int, const std::vector<std::string>& summary) {
  for (auto& line : summary) log_.info(line);
  log_.info("");
}

void flower_log::on_round_start(int round, int num_rounds) {
  log_.info("");
  log_.info("[ROUND " + std::to_string(round) + "/" + std::to_string(num_rounds) + "]");
}

void flower_log::on_sampled(int, run_phase phase, size_t sampled, size_t available) {
  log_.info(std::string{"configure_"} + to_string(phase) + ": Sampled " + std::to_string(sampled) +
            " nodes (out of " + std::to_string(available) + ")");
}

void flower_log::on_phase_end(run_phase phase, const phase_report& r) {
  // Flower says nothing of an evaluate phase that sampled no node.
  if (phase == run_phase::evaluate && r.sampled == 0) return;
  log_.info(std::string{"aggregate_"} + to_string(phase) + ": Received " +
            std::to_string(r.results) + " results and " + std::to_string(r.failures) +
            " failures");
  for (size_t i = 0; i < r.failure_reasons.size() && i < failures_shown; ++i)
    log_.warn("    " + r.failure_reasons[i]);
  if (r.failure_reasons.size() > failures_shown)
    log_.warn("    ... and " + std::to_string(r.failure_reasons.size() - failures_shown) +
              " more");
  if (auto& sa = r.secure_aggregation) {
    std::string line = "secure aggregation (SecAgg+, " + std::to_string(sa->num_shares) +
                       " shares, threshold " + std::to_string(sa->threshold) + "): " +
                       std::to_string(sa->survivors.size()) + " survivors";
    for (auto& d : sa->dropped)
      line += "; node " + std::to_string(d.node) + " dropped at " + d.stage;
    if (!sa->recovered.empty()) {
      line += "; recovered";
      for (auto n : sa->recovered) line += " node " + std::to_string(n);
    }
    log_.info(line);
  }
}

void flower_log::on_version(const version_report& r, int num_versions) {
  log_.info("");
  log_.info("[VERSION " + std::to_string(r.version) + "/" + std::to_string(num_versions) +
            "] applied " + std::to_string(r.applied()) + " update" + (r.applied() == 1 ? "" : "s") +
            " (staleness mean " + format_double("%.1f", r.staleness_mean()) + ", max " +
            std::to_string(r.staleness_max()) + ")" +
            (r.failures ? ", " + std::to_string(r.failures) + " refused" : std::string{}));
  for (size_t i = 0; i < r.failure_reasons.size() && i < failures_shown; ++i)
    log_.warn("    " + r.failure_reasons[i]);
}

void flower_log::on_arrays_kept(int, const std::string& why) {
  log_.warn("aggregate_train: " + why + "; keeping the previous global arrays");
}

void flower_log::on_aggregated(int, run_phase, const metric_record& metrics) {
  log_.info("    └──> Aggregated MetricRecord: " + to_string(metrics));
}

void flower_log::on_server_evaluation(int round, const metric_record& metrics) {
  if (round == 0) {
    log_.info("Initial global evaluation results: " + to_string(metrics));
    return;
  }
  log_.info("Global evaluation");
  log_.info("    └──> MetricRecord: " + to_string(metrics));
}

void flower_log::on_finished(const strategy_result& result) {
  log_.info("");
  if (!result.error.empty())
    log_.warn("Run failed after " + std::to_string(result.train_rounds.size()) + " round(s): " + result.error +
              "; what follows is the result so far");
  else if (result.stopped)
    log_.warn("Run stopped after " + std::to_string(result.train_rounds.size()) +
              " round(s); what follows is the result so far");
  auto& u = result.unapplied;
  if (u.applied() > 0)
    log_.warn(std::to_string(u.applied()) + " update(s) in a buffer that had not filled when the run ended: "
              "not applied to the final arrays");
  log_.info("Strategy execution finished in " + format_double("%.2f", result.seconds) + "s");
  log_.info("");
  log_.info("Final results:");
  log_.info("");
  log_.info("    Global Arrays:");
  log_.info("            ArrayRecord (" + format_double("%.3f", result.arrays.count_bytes() / 1e6) +
            " MB)");
  log_.info("");
  log_metrics_history(log_, "Aggregated ClientApp-side Train Metrics",
                      result.train_metrics_clientapp);
  log_.info("");
  log_metrics_history(log_, "Aggregated ClientApp-side Evaluate Metrics",
                      result.evaluate_metrics_clientapp);
  log_.info("");
  log_metrics_history(log_, "ServerApp-side Evaluate Metrics", result.evaluate_metrics_serverapp);
  log_.info("");
}

void flower_log::on_resumed(int next_round, int num_rounds) {
  log_.info("Resuming from a checkpoint at round " + std::to_string(next_round) + "/" +
            std::to_string(num_rounds));
}

void flower_log::on_checkpoint(int round, double seconds, uint64_t bytes, const std::string& error) {
  if (!error.empty()) {
    log_.warn("checkpoint after round " + std::to_string(round) + " not written: " + error);
    return;
  }
  log_.debug("checkpoint after round " + std::to_string(round) + ": " + std::to_string(bytes) + " bytes in " +
             format_double("%.3f", seconds) + "s");
}

}  // namespace stamen
