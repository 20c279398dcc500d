#include "runtime/report/result_json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <variant>

namespace stamen {

namespace {

nlohmann::json metrics_json(const metric_record& rec) {
  auto out = nlohmann::json::object();
  for (auto& [k, v] : rec)
    std::visit([&](auto& x) { out[k] = x; }, v);
  return out;
}

nlohmann::json phase_json(const phase_report& r) {
  nlohmann::json j = {{"sampled", r.sampled},   {"results", r.results},
                      {"failures", r.failures}, {"failure_reasons", r.failure_reasons},
                      {"seconds", r.seconds}};
  if (auto& sa = r.secure_aggregation) {
    auto dropped = nlohmann::json::array(), bytes = nlohmann::json::array();
    for (auto& d : sa->dropped)
      dropped.push_back({{"node", d.node}, {"stage", d.stage}, {"reason", d.reason}});
    for (auto& b : sa->bytes)
      bytes.push_back({{"stage", b.stage}, {"sent", b.sent}, {"received", b.received}});
    j["secure_aggregation"] = {{"num_shares", sa->num_shares}, {"threshold", sa->threshold},
                               {"survivors", sa->survivors}, {"dropped", dropped},
                               {"recovered", sa->recovered}, {"bytes", bytes}};
  }
  return j;
}

}  // namespace

std::string to_json(const strategy_result& result) {
  auto& train = result.train_rounds;
  auto& evaluate = result.evaluate_rounds;
  nlohmann::json rounds = nlohmann::json::array();
  // An asynchronous run has versions, not rounds: its evaluations are keyed
  // by the version they evaluated.
  size_t n = result.versions.empty() ? std::max(train.size(), evaluate.size()) : 0;
  nlohmann::json versions = nlohmann::json::array();
  for (auto& v : result.versions) {
    nlohmann::json j{{"version", v.version},
                     {"applied", v.applied()},
                     {"staleness", {{"mean", v.staleness_mean()}, {"max", v.staleness_max()},
                                    {"values", v.staleness}}},
                     {"failures", v.failures},
                     {"failure_reasons", v.failure_reasons},
                     {"in_flight_min", v.in_flight_min},
                     {"seconds", v.seconds}};
    for (auto& e : evaluate)
      if (e.round == v.version) {
        j["evaluate"] = phase_json(e);
        if (auto it = result.evaluate_metrics_clientapp.find(v.version);
            it != result.evaluate_metrics_clientapp.end())
          j["evaluate"]["metrics"] = metrics_json(it->second);
      }
    if (auto it = result.evaluate_metrics_serverapp.find(v.version);
        it != result.evaluate_metrics_serverapp.end())
      j["server_evaluate"] = metrics_json(it->second);
    versions.push_back(std::move(j));
  }
  for (size_t i = 0; i < n; ++i) {
    nlohmann::json r;
    int round = static_cast<int>(i) + 1;
    r["round"] = round;
    if (i < train.size()) {
      r["train"] = phase_json(train[i]);
      if (auto it = result.train_metrics_clientapp.find(round);
          it != result.train_metrics_clientapp.end())
        r["train"]["metrics"] = metrics_json(it->second);
    }
    if (i < evaluate.size()) {
      r["evaluate"] = phase_json(evaluate[i]);
      if (auto it = result.evaluate_metrics_clientapp.find(round);
          it != result.evaluate_metrics_clientapp.end())
        r["evaluate"]["metrics"] = metrics_json(it->second);
    }
    if (auto it = result.evaluate_metrics_serverapp.find(round);
        it != result.evaluate_metrics_serverapp.end())
      r["server_evaluate"] = metrics_json(it->second);
    rounds.push_back(std::move(r));
  }
  nlohmann::json arrays_json = nlohmann::json::array();
  for (auto& [k, a] : result.arrays) arrays_json.push_back({{"name", k}, {"dtype", a.describe()}});
  nlohmann::json doc{{"seconds", result.seconds},
                     {"stopped", result.stopped},
                     {"rounds", rounds},
                     {"arrays", {{"bytes", result.arrays.count_bytes()}, {"entries", arrays_json}}}};
  if (!result.error.empty()) doc["error"] = result.error;
  if (!result.versions.empty()) doc["versions"] = versions;
  auto& u = result.unapplied;
  if (!result.versions.empty() || u.applied() + u.failures > 0)
    doc["unapplied"] = {{"updates", u.applied()}, {"staleness", u.staleness}, {"failures", u.failures},
                        {"failure_reasons", u.failure_reasons}};
  if (auto it = result.evaluate_metrics_serverapp.find(0);
      it != result.evaluate_metrics_serverapp.end())
    doc["initial_server_evaluate"] = metrics_json(it->second);
  return doc.dump(2);
}

std::string to_json(const metric_record& metrics) { return metrics_json(metrics).dump(); }

}  // namespace stamen
