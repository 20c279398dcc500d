#include "runtime/strategy/strategy.hpp"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "runtime/checkpoint.hpp"
#include "runtime/format.hpp"

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
  phase_sink(Aggregator& agg, const std::vector<message>& sent, run_phase phase,
             phase_report& report, run_observer& events)
      : agg_(agg), phase_(phase), report_(report), events_(events) {
    for (auto& m : sent) expected_.insert(m.meta().dst_node_id);
  }

  void on_reply(const message& reply) override {
    auto node = reply.meta().src_node_id;
    auto who = "node " + std::to_string(node);
    if (expected_.count(node) == 0)
      return failed(node, who + ": reply from a node that was not sampled");
    if (!seen_.insert(node).second) return failed(node, who + ": duplicate reply");
    if (reply.has_error())
      return failed(node, who + ": error " + std::to_string(reply.error().code) + ": " +
                              reply.error().reason);
    if (auto ok = agg_.accept(reply); !ok)
      return failed(node, who + ": rejected: " + ok.error().what);
    ++report_.results;
    events_.on_reply_accepted(report_.round, phase_, node);
  }

  void timed_out(uint64_t node, double timeout_s) {
    failed(node, "node " + std::to_string(node) + ": no reply within the timeout of " +
                     format_double("%.2f", timeout_s) + "s");
  }

 private:
  void failed(uint64_t node, std::string reason) {
    ++report_.failures;
    events_.on_reply_failed(report_.round, phase_, node, reason);
    report_.failure_reasons.push_back(std::move(reason));
  }

  Aggregator& agg_;
  run_phase phase_;
  phase_report& report_;
  run_observer& events_;
  std::unordered_set<uint64_t> expected_;
  std::unordered_set<uint64_t> seen_;
};

// Sends one phase's instructions and folds the replies as they arrive.
template <class Aggregator>
phase_report run_phase_of(grid& g, std::vector<message> msgs, double timeout_s, Aggregator& agg,
                          int round, run_phase phase, run_observer& events,
                          train_workflow* workflow = nullptr, const array_record* current = nullptr,
                          std::optional<std::string>* workflow_failed = nullptr) {
  phase_report report;
  report.round = round;
  report.sampled = msgs.size();
  auto t0 = clock_type::now();
  // An instruction is worth nothing once its round closed: a node that gets
  // it later skips it, and one whose handler runs past it is abandoned.
  for (auto& m : msgs) m.meta().ttl = std::min(m.meta().ttl, timeout_s);
  if (!msgs.empty()) {
    phase_sink<Aggregator> sink{agg, msgs, phase, report, events};
    if (workflow) {
      *workflow_failed = workflow->run(g, round, std::move(msgs), *current, timeout_s, sink, report);
    } else {
      auto sr = g.send_and_stream(std::move(msgs), timeout_s, sink);
      for (auto& [id, node] : sr.timed_out) sink.timed_out(node, timeout_s);
    }
  }
  report.seconds = seconds_since(t0);
  events.on_phase_end(phase, report);
  return report;
}

// Collects replies for the batch forms of aggregate_train/aggregate_evaluate.
template <class Aggregator>
void feed(Aggregator& agg, const std::vector<message>& replies) {
  for (auto& r : replies)
    if (r.has_content()) (void)agg.accept(r);
}

}  // namespace

void strategy::set_train_workflow(std::shared_ptr<train_workflow> workflow) {
  if (workflow && needs_individual_updates())
    throw std::invalid_argument(name() + " aggregates each node's own update, which " +
                                workflow->name() +
                                " hides: use a weighted-mean strategy (FedAvg, FedAvgM, FedProx, "
                                "FedAdam, FedAdagrad, FedYogi, QFedAvg, or a DP wrapper of one)");
  workflow_ = std::move(workflow);
}

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

void strategy::train_round(grid& g, int round, double timeout_s, const config_record& config,
                           strategy_result& result) {
  auto& ev = events();
  auto msgs = configure_train(round, result.arrays, config, g);
  auto agg = make_train_aggregator(round, result.arrays);
  std::optional<std::string> workflow_failed;
  auto report = run_phase_of(g, std::move(msgs), timeout_s, *agg, round, run_phase::train, ev,
                             workflow_.get(), &result.arrays, &workflow_failed);
  auto aggregate = agg->finish();
  agg.reset();  // release the running sums before evaluation
  // A strategy may refuse a round whose replies it accepted (too few for
  // its guarantees) whether or not it produced arrays from them.
  bool judged = aggregate.arrays || report.results > 0;
  auto rejected = judged ? reject_train_round(report) : std::nullopt;
  if (workflow_failed)
    ev.on_arrays_kept(round, workflow_->name() + " failed in round " + std::to_string(round) +
                                 ": " + *workflow_failed);
  else if (rejected)
    ev.on_arrays_kept(round, *rejected);
  else if (aggregate.arrays)
    result.arrays = update_global(round, result.arrays, std::move(*aggregate.arrays));
  else if (report.sampled > 0)
    ev.on_arrays_kept(round, "no valid update in round " + std::to_string(round));
  if (aggregate.metrics) {
    ev.on_aggregated(round, run_phase::train, *aggregate.metrics);
    result.train_metrics_clientapp[round] = std::move(*aggregate.metrics);
  }
  result.train_rounds.push_back(std::move(report));
}

void strategy::evaluate_round(grid& g, int round, double timeout_s, const config_record& config,
                              strategy_result& result) {
  auto& ev = events();
  auto msgs = configure_evaluate(round, result.arrays, config, g);
  auto agg = make_evaluate_aggregator(round);
  auto report = run_phase_of(g, std::move(msgs), timeout_s, *agg, round, run_phase::evaluate, ev);
  if (auto m = agg->finish()) {
    ev.on_aggregated(round, run_phase::evaluate, *m);
    result.evaluate_metrics_clientapp[round] = std::move(*m);
  }
  result.evaluate_rounds.push_back(std::move(report));
}

void strategy::run_round(grid& g, int round, double timeout_s, const config_record& train_config,
                         const config_record& evaluate_config, const evaluate_fn& server_evaluate,
                         strategy_result& result) {
  train_round(g, round, timeout_s, train_config, result);
  if (run_stop_requested()) return;
  evaluate_round(g, round, timeout_s, evaluate_config, result);
  if (server_evaluate) {
    if (auto m = server_evaluate(round, result.arrays)) {
      events().on_server_evaluation(round, *m);
      result.evaluate_metrics_serverapp[round] = std::move(*m);
    }
  }
}

int strategy::resume(const checkpoint_store& store, int num_rounds, strategy_result& result) {
  auto loaded = store.load();
  if (!loaded) throw run_error(loaded.error().what);
  if (!*loaded) return 1;
  auto& s = **loaded;
  auto where = "checkpoint '" + store.file().string() + "'";
  auto* meta = s.configs("checkpoint");
  auto* global = s.arrays("global");
  if (meta == nullptr || global == nullptr) throw run_error(where + " has no round or arrays");
  auto field = [&](const char* key) -> const config_value& {
    auto* v = meta->get(key);
    if (v == nullptr) throw run_error(where + " has no '" + key + "'");
    return *v;
  };
  auto* saved_name = std::get_if<std::string>(&field("strategy"));
  auto* round = std::get_if<int64_t>(&field("round"));
  auto* rounds = std::get_if<int64_t>(&field("num_rounds"));
  if (!saved_name || !round || !rounds) throw run_error(where + " is malformed");
  if (*saved_name != name())
    throw run_error(where + " was written by " + *saved_name + ", not " + name());
  if (*rounds != num_rounds)
    throw run_error(where + " is of a run of " + std::to_string(*rounds) + " rounds, not " +
                    std::to_string(num_rounds));
  if (auto ok = restore_history(s, result); !ok) throw run_error(where + ": " + ok.error().what);
  if (auto ok = restore_state(s); !ok) throw run_error(where + ": " + ok.error().what);
  result.arrays = *global;
  return static_cast<int>(*round) + 1;
}

void strategy::checkpoint(checkpoint_store& store, int round, int num_rounds, const strategy_result& result) {
  record_dict s;
  s.insert_or_assign("checkpoint", config_record{{"strategy", name()},
                                                 {"round", static_cast<int64_t>(round)},
                                                 {"num_rounds", static_cast<int64_t>(num_rounds)}});
  s.insert_or_assign("global", result.arrays);
  save_history(result, s);
  save_state(s);
  auto ok = store.save(s);
  events().on_checkpoint(round, store.last_save_seconds(), store.last_save_bytes(),
                         ok ? std::string{} : ok.error().what);
}

strategy_result strategy::start(grid& g, array_record initial_arrays, int num_rounds,
                                double timeout_s, config_record train_config,
                                config_record evaluate_config, evaluate_fn server_evaluate) {
  if (num_rounds < 0) throw run_error("num_rounds must not be negative");
  if (!(timeout_s > 0)) throw run_error("timeout must be positive");
  auto& ev = events();
  ev.on_start(name(), num_rounds,
              summary(num_rounds, initial_arrays, train_config, evaluate_config));
  strategy_result result;
  result.arrays = std::move(initial_arrays);
  auto t0 = clock_type::now();
  auto* checkpoints = current_checkpoint_store();
  int first = checkpoints ? resume(*checkpoints, num_rounds, result) : 1;
  if (first > 1) {
    ev.on_resumed(first, num_rounds);
  } else if (server_evaluate) {
    if (auto m = server_evaluate(0, result.arrays)) {
      ev.on_server_evaluation(0, *m);
      result.evaluate_metrics_serverapp[0] = std::move(*m);
    }
  }
  // A run that fails reports what it had up to then (its rounds, their
  // failures) before the exception goes on to end it.
  auto fail_with = [&](std::string why) {
    result.seconds = seconds_since(t0);
    result.error = std::move(why);
    ev.on_finished(result);
  };
  try {
    for (int round = first; round <= num_rounds; ++round) {
      if (run_stop_requested()) {
        result.stopped = true;
        break;
      }
      ev.on_round_start(round, num_rounds);
      run_round(g, round, timeout_s, train_config, evaluate_config, server_evaluate, result);
      // Only a whole round is a checkpoint: a stop that cut this one short
      // leaves the one before it.
      if (checkpoints && !run_stop_requested()) checkpoint(*checkpoints, round, num_rounds, result);
    }
  } catch (const std::exception& e) {
    // The run fails, and whoever watches it gets the rounds it did have.
    fail_with(e.what());
    throw;
  }
  result.seconds = seconds_since(t0);
  result.stopped = result.stopped || (num_rounds > 0 && run_stop_requested());
  size_t sampled = 0, results = 0;
  for (auto& tr : result.train_rounds) sampled += tr.sampled, results += tr.results;
  if (sampled > 0 && results == 0) {
    // Nothing was ever trained: the result (with every failure) is reported,
    // and the run fails with the first cause rather than handing back a
    // model that is still the initial one.
    std::string first;
    for (auto& tr : result.train_rounds)
      if (!tr.failure_reasons.empty()) {
        first = tr.failure_reasons.front();
        break;
      }
    std::string why = "every train reply of the run failed; the first: " + first;
    fail_with(why);
    throw run_error(why);
  }
  ev.on_finished(result);
  return result;
}

}  // namespace stamen
