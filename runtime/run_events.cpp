#include "runtime/run_events.hpp"

namespace stamen {

namespace {

thread_local run_observer* current = nullptr;
thread_local const run_stop* current_stop = nullptr;

}  // namespace

const char* to_string(run_phase x) {
  return x == run_phase::train ? "train" : "evaluate";
}

void run_events::add(std::shared_ptr<run_observer> observer) {
  if (observer) observers_.push_back(std::move(observer));
}

void run_events::add(run_observer& observer) {
  // Not owned: an aliasing pointer with no control block.
  observers_.push_back(std::shared_ptr<run_observer>{std::shared_ptr<void>{}, &observer});
}

void run_events::on_start(const std::string& strategy, int num_rounds,
                          const std::vector<std::string>& summary) {
  for (auto& o : observers_) o->on_start(strategy, num_rounds, summary);
}

void run_events::on_round_start(int round, int num_rounds) {
  for (auto& o : observers_) o->on_round_start(round, num_rounds);
}

void run_events::on_sampled(int round, run_phase phase, size_t sampled, size_t available) {
  for (auto& o : observers_) o->on_sampled(round, phase, sampled, available);
}

void run_events::on_reply_accepted(int round, run_phase phase, uint64_t node_id) {
  for (auto& o : observers_) o->on_reply_accepted(round, phase, node_id);
}

void run_events::on_reply_failed(int round, run_phase phase, uint64_t node_id,
                                 const std::string& reason) {
  for (auto& o : observers_) o->on_reply_failed(round, phase, node_id, reason);
}

void run_events::on_phase_end(run_phase phase, const phase_report& report) {
  for (auto& o : observers_) o->on_phase_end(phase, report);
}

void run_events::on_arrays_kept(int round, const std::string& why) {
  for (auto& o : observers_) o->on_arrays_kept(round, why);
}

void run_events::on_aggregated(int round, run_phase phase, const metric_record& metrics) {
  for (auto& o : observers_) o->on_aggregated(round, phase, metrics);
}

void run_events::on_server_evaluation(int round, const metric_record& metrics) {
  for (auto& o : observers_) o->on_server_evaluation(round, metrics);
}

void run_events::on_version(const version_report& report, int num_versions) {
  for (auto& o : observers_) o->on_version(report, num_versions);
}

void run_events::on_resumed(int next_round, int num_rounds) {
  for (auto& o : observers_) o->on_resumed(next_round, num_rounds);
}

void run_events::on_checkpoint(int round, double seconds, uint64_t bytes, const std::string& error) {
  for (auto& o : observers_) o->on_checkpoint(round, seconds, bytes, error);
}

void run_events::on_finished(const strategy_result& result) {
  for (auto& o : observers_) o->on_finished(result);
}

// The hook runs under the lock: once set_interrupt({}) returns, no call of
// the old hook is under way (it may reach an object that is about to go).
void run_stop::request() {
  requested_ = true;
  std::lock_guard<std::mutex> guard{mtx_};
  if (interrupt_) interrupt_();
}

void run_stop::set_interrupt(std::function<void()> hook) {
  std::lock_guard<std::mutex> guard{mtx_};
  interrupt_ = std::move(hook);
  if (interrupt_ && requested()) interrupt_();
}

run_scope::run_scope(run_observer& observer, const run_stop* stop)
    : previous_(current), previous_stop_(current_stop) {
  current = &observer;
  current_stop = stop;
}

run_scope::~run_scope() {
  current = previous_;
  current_stop = previous_stop_;
}

bool run_stop_requested() { return current_stop != nullptr && current_stop->requested(); }

run_observer& current_run_observer() {
  static run_observer ignore_all;
  return current != nullptr ? *current : ignore_all;
}

}  // namespace stamen
