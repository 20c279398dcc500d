#include "actors/superlink_metrics.hpp"

#include <cstdio>

namespace stamen {

namespace {

std::string number(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

// A bucket's bound as written in code (0.005, not 0.0050000000000000001).
std::string bound(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

std::string head(const std::string& name, const std::string& type, const std::string& help) {
  return "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

void histogram::observe(double x) {
  for (size_t i = 0; i < bounds.size(); ++i)
    if (x <= bounds[i]) ++counts_[i];
  ++count_;
  sum_ += x;
}

std::string histogram::render(const std::string& name, const std::string& help) const {
  auto out = head(name, "histogram", help);
  for (size_t i = 0; i < bounds.size(); ++i)
    out += name + "_bucket{le=\"" + bound(bounds[i]) + "\"} " + std::to_string(counts_[i]) + "\n";
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + number(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
  return out;
}

void superlink_metrics::round_completed(double seconds) {
  ++rounds_;
  round_seconds_.observe(seconds);
}

void superlink_metrics::reply(const std::string& phase, const std::string& failure_reason) {
  if (failure_reason.empty()) ++replies_[phase];
  else ++failures_[{phase, reason_label(failure_reason)}];
}

void superlink_metrics::checkpoint(double seconds) { checkpoint_seconds_.observe(seconds); }

std::string superlink_metrics::reason_label(const std::string& reason) {
  if (reason.find("no reply within") != std::string::npos) return "timeout";
  if (reason.find("rejected") != std::string::npos) return "rejected";
  if (reason.find("duplicate") != std::string::npos) return "duplicate";
  if (reason.find("not sampled") != std::string::npos) return "unexpected";
  if (reason.find(": error ") != std::string::npos) return "error";
  return "other";
}

std::string superlink_metrics::render(size_t nodes_connected,
                                      const std::map<std::string, uint64_t>& runs_by_status) const {
  std::string out = head("stamen_nodes_connected", "gauge", "SuperNodes connected now.");
  out += "stamen_nodes_connected " + std::to_string(nodes_connected) + "\n";
  out += head("stamen_node_joins_total", "counter", "SuperNode registrations, rejoins included.");
  out += "stamen_node_joins_total " + std::to_string(joins_) + "\n";
  out += head("stamen_runs", "gauge", "Runs by status.");
  for (auto* s : {"pending", "starting", "running", "finished:completed", "finished:failed", "finished:stopped"}) {
    auto i = runs_by_status.find(s);
    out += "stamen_runs{status=\"" + std::string{s} + "\"} " + std::to_string(i == runs_by_status.end() ? 0 : i->second) + "\n";
  }
  out += head("stamen_rounds_completed_total", "counter", "Rounds (or versions) completed, all runs.");
  out += "stamen_rounds_completed_total " + std::to_string(rounds_) + "\n";
  out += round_seconds_.render("stamen_round_duration_seconds", "Wall time of a round, train and evaluate.");
  out += head("stamen_replies_total", "counter", "Replies accepted, by phase.");
  for (auto* p : {"train", "evaluate"}) {
    auto i = replies_.find(p);
    out += "stamen_replies_total{phase=\"" + std::string{p} + "\"} " + std::to_string(i == replies_.end() ? 0 : i->second) + "\n";
  }
  out += head("stamen_reply_failures_total", "counter", "Replies failed, by phase and reason.");
  for (auto& [key, n] : failures_)
    out += "stamen_reply_failures_total{phase=\"" + key.first + "\",reason=\"" + key.second + "\"} " +
           std::to_string(n) + "\n";
  out += head("stamen_received_bytes_total", "counter", "Bytes read from peers.");
  out += "stamen_received_bytes_total " + std::to_string(bytes_in_) + "\n";
  out += head("stamen_sent_bytes_total", "counter", "Bytes queued to peers.");
  out += "stamen_sent_bytes_total " + std::to_string(bytes_out_) + "\n";
  out += checkpoint_seconds_.render("stamen_checkpoint_duration_seconds", "Time to write a run's checkpoint.");
  return out;
}

}  // namespace stamen
