#include "runtime/strategy.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <unordered_set>

namespace stamen {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Folds the replies of one phase into an aggregator and counts what happened.
// Replies that are errors, unexpected (an earlier round's), duplicated or
// rejected by the aggregator are failures with a reason; none is aggregated.
template <class Aggregator>
class phase_sink : public reply_sink {
 public:
  // Keyed by node: a phase sends each sampled node one instruction, and the
  // grid forwards only replies to this batch, so an unknown sender or a
  // second reply from a node is a failure.
  phase_sink(Aggregator& agg, const std::vector<message>& sent, phase_report& report)
      : agg_(agg), report_(report) {
    for (auto& m : sent) expected_.insert(m.meta().dst_node_id);
  }

  void on_reply(const message& reply) override {
    auto node = reply.meta().src_node_id;
    auto who = "node " + std::to_string(node);
    if (expected_.count(node) == 0) return failed(who + ": reply from a node that was not sampled");
    if (!seen_.insert(node).second) return failed(who + ": duplicate reply");
    if (reply.has_error())
      return failed(who + ": error " + std::to_string(reply.error().code) + ": " +
                    reply.error().reason);
    if (auto ok = agg_.accept(reply); !ok) return failed(who + ": rejected: " + ok.error().what);
    ++report_.results;
  }

  void timed_out(uint64_t node, double timeout_s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", timeout_s);
    failed("node " + std::to_string(node) + ": no reply within the timeout of " + buf + "s");
  }

 private:
  void failed(std::string reason) {
    ++report_.failures;
    report_.failure_reasons.push_back(std::move(reason));
  }

  Aggregator& agg_;
  phase_report& report_;
  std::unordered_set<uint64_t> expected_;
  std::unordered_set<uint64_t> seen_;
};

template <class Aggregator>
phase_report run_phase(grid& g, std::vector<message> msgs, double timeout_s, Aggregator& agg,
                       int round) {
  phase_report report;
  report.round = round;
  report.sampled = msgs.size();
  auto t0 = clock_type::now();
  if (!msgs.empty()) {
    phase_sink<Aggregator> sink{agg, msgs, report};
    auto sr = g.send_and_stream(std::move(msgs), timeout_s, sink);
    for (auto& [id, node] : sr.timed_out) sink.timed_out(node, timeout_s);
  }
  report.seconds = seconds_since(t0);
  return report;
}

void log_failures(const logger& log, const phase_report& r) {
  constexpr size_t shown = 10;
  for (size_t i = 0; i < r.failure_reasons.size() && i < shown; ++i)
    log.warn("    " + r.failure_reasons[i]);
  if (r.failure_reasons.size() > shown)
    log.warn("    ... and " + std::to_string(r.failure_reasons.size() - shown) + " more");
}

// Collects replies for the batch forms of aggregate_train/aggregate_evaluate.
template <class Aggregator>
void feed(Aggregator& agg, const std::vector<message>& replies) {
  for (auto& r : replies)
    if (r.has_content()) (void)agg.accept(r);
}

std::string sci(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4e", x);
  return buf;
}

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
      line += metric_as_double(v, d) ? "'" + sci(d) + "'" : to_string(metric_record{{k, v}});
      first = false;
    }
    line += ++i == history.size() ? "}}" : "},";
    log.info(line);
  }
}

nlohmann::json metrics_json(const metric_record& rec) {
  auto out = nlohmann::json::object();
  for (auto& [k, v] : rec)
    std::visit([&](auto& x) { out[k] = x; }, v);
  return out;
}

nlohmann::json phase_json(const phase_report& r) {
  return {{"sampled", r.sampled},   {"results", r.results},
          {"failures", r.failures}, {"failure_reasons", r.failure_reasons},
          {"seconds", r.seconds}};
}

}  // namespace

train_aggregate strategy::aggregate_train(int round, const std::vector<message>& replies,
                                          const array_record& current) {
  auto agg = make_train_aggregator(round, current);
  feed(*agg, replies);
  return agg->finish();
}

std::optional<metric_record> strategy::aggregate_evaluate(int round,
                                                          const std::vector<message>& replies) {
  auto agg = make_evaluate_aggregator(round);
  feed(*agg, replies);
  return agg->finish();
}

strategy_result strategy::start(grid& g, array_record initial_arrays, int num_rounds,
                                double timeout_s, config_record train_config,
                                config_record evaluate_config, evaluate_fn server_evaluate) {
  if (num_rounds < 0) throw run_error("num_rounds must not be negative");
  if (!(timeout_s > 0)) throw run_error("timeout must be positive");
  summary(num_rounds, initial_arrays, train_config, evaluate_config);
  log_.info("");
  strategy_result result;
  result.arrays = std::move(initial_arrays);
  auto t0 = clock_type::now();
  if (server_evaluate) {
    if (auto m = server_evaluate(0, result.arrays)) {
      log_.info("Initial global evaluation results: " + to_string(*m));
      result.evaluate_metrics_serverapp[0] = *m;
    }
  }
  for (int round = 1; round <= num_rounds; ++round) {
    log_.info("");
    log_.info("[ROUND " + std::to_string(round) + "/" + std::to_string(num_rounds) + "]");

    // Train.
    auto msgs = configure_train(round, result.arrays, train_config, g);
    auto tagg = make_train_aggregator(round, result.arrays);
    auto tr = run_phase(g, std::move(msgs), timeout_s, *tagg, round);
    log_.info("aggregate_train: Received " + std::to_string(tr.results) + " results and " +
              std::to_string(tr.failures) + " failures");
    log_failures(log_, tr);
    auto aggregate = tagg->finish();
    tagg.reset();  // release the running sums before evaluation
    auto rejected = aggregate.arrays ? reject_train_round(tr) : std::nullopt;
    if (rejected)
      log_.warn("aggregate_train: " + *rejected + "; keeping the previous global arrays");
    else if (aggregate.arrays)
      result.arrays = std::move(*aggregate.arrays);
    else if (tr.sampled > 0)
      log_.warn("aggregate_train: no valid update in round " + std::to_string(round) +
                ", keeping the previous global arrays");
    if (aggregate.metrics) {
      log_.info("    └──> Aggregated MetricRecord: " + to_string(*aggregate.metrics));
      result.train_metrics_clientapp[round] = *aggregate.metrics;
    }
    result.train_rounds.push_back(std::move(tr));

    // Evaluate.
    auto emsgs = configure_evaluate(round, result.arrays, evaluate_config, g);
    auto eagg = make_evaluate_aggregator(round);
    auto er = run_phase(g, std::move(emsgs), timeout_s, *eagg, round);
    if (er.sampled > 0) {
      log_.info("aggregate_evaluate: Received " + std::to_string(er.results) + " results and " +
                std::to_string(er.failures) + " failures");
      log_failures(log_, er);
    }
    if (auto m = eagg->finish()) {
      log_.info("    └──> Aggregated MetricRecord: " + to_string(*m));
      result.evaluate_metrics_clientapp[round] = *m;
    }
    result.evaluate_rounds.push_back(std::move(er));

    if (server_evaluate) {
      if (auto m = server_evaluate(round, result.arrays)) {
        log_.info("Global evaluation");
        log_.info("    └──> MetricRecord: " + to_string(*m));
        result.evaluate_metrics_serverapp[round] = *m;
      }
    }
  }
  result.seconds = seconds_since(t0);
  size_t sampled = 0, results = 0;
  for (auto& tr : result.train_rounds) sampled += tr.sampled, results += tr.results;
  if (sampled > 0 && results == 0) {
    // Nothing was ever trained: report the first cause rather than a model
    // that is still the initial one.
    std::string first;
    for (auto& tr : result.train_rounds)
      if (!tr.failure_reasons.empty()) {
        first = tr.failure_reasons.front();
        break;
      }
    throw run_error("every train reply of the run failed; the first: " + first);
  }
  log_.info("");
  char buf[64];
  std::snprintf(buf, sizeof buf, "Strategy execution finished in %.2fs", result.seconds);
  log_.info(buf);
  log_.info("");
  result.log_final(log_);
  g.record_result(result);
  return result;
}

void strategy_result::log_final(const logger& log) const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "ArrayRecord (%.3f MB)", arrays.count_bytes() / 1e6);
  log.info("Final results:");
  log.info("");
  log.info("    Global Arrays:");
  log.info(std::string{"            "} + buf);
  log.info("");
  log_metrics_history(log, "Aggregated ClientApp-side Train Metrics", train_metrics_clientapp);
  log.info("");
  log_metrics_history(log, "Aggregated ClientApp-side Evaluate Metrics",
                      evaluate_metrics_clientapp);
  log.info("");
  log_metrics_history(log, "ServerApp-side Evaluate Metrics", evaluate_metrics_serverapp);
  log.info("");
}

std::string strategy_result::to_json() const {
  nlohmann::json rounds = nlohmann::json::array();
  size_t n = std::max(train_rounds.size(), evaluate_rounds.size());
  for (size_t i = 0; i < n; ++i) {
    nlohmann::json r;
    int round = static_cast<int>(i) + 1;
    r["round"] = round;
    if (i < train_rounds.size()) {
      r["train"] = phase_json(train_rounds[i]);
      if (auto it = train_metrics_clientapp.find(round); it != train_metrics_clientapp.end())
        r["train"]["metrics"] = metrics_json(it->second);
    }
    if (i < evaluate_rounds.size()) {
      r["evaluate"] = phase_json(evaluate_rounds[i]);
      if (auto it = evaluate_metrics_clientapp.find(round); it != evaluate_metrics_clientapp.end())
        r["evaluate"]["metrics"] = metrics_json(it->second);
    }
    if (auto it = evaluate_metrics_serverapp.find(round); it != evaluate_metrics_serverapp.end())
      r["server_evaluate"] = metrics_json(it->second);
    rounds.push_back(std::move(r));
  }
  nlohmann::json arrays_json = nlohmann::json::array();
  for (auto& [k, a] : arrays) arrays_json.push_back({{"name", k}, {"dtype", a.describe()}});
  nlohmann::json doc{{"seconds", seconds},
                     {"rounds", rounds},
                     {"arrays", {{"bytes", arrays.count_bytes()}, {"entries", arrays_json}}}};
  if (auto it = evaluate_metrics_serverapp.find(0); it != evaluate_metrics_serverapp.end())
    doc["initial_server_evaluate"] = metrics_json(it->second);
  return doc.dump(2);
}

}  // namespace stamen
