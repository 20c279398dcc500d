#include "runtime/strategy/async_strategy.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "runtime/checkpoint.hpp"
#include "runtime/format.hpp"

namespace stamen {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

const char* to_string(async_options::sampling_policy p) {
  return p == async_options::sampling_policy::same ? "same" : "random";
}

// One training in flight: its node and the version it trains from.
struct training {
  uint64_t node = 0;
  int version = 0;
};

}  // namespace

async_strategy::async_strategy(fed_avg_options opts, async_options async)
    : fed_avg(std::move(opts)), async_(async) {
  if (async_.concurrency == 0) throw std::invalid_argument("concurrency must be at least 1");
  if (async_.num_server_updates < 1)
    throw std::invalid_argument("num_server_updates must be at least 1");
  if (!(async_.max_seconds > 0)) throw std::invalid_argument("max_seconds must be > 0");
  if (async_.evaluate_every < 0) throw std::invalid_argument("evaluate_every must be >= 0");
  if (async_.max_staleness && *async_.max_staleness < 0)
    throw std::invalid_argument("max_staleness must be >= 0");
}

std::vector<std::string> async_strategy::summary(int num_rounds, const array_record& arrays,
                                                 const config_record& train_config,
                                                 const config_record& evaluate_config) const {
  auto lines = fed_avg::summary(num_rounds, arrays, train_config, evaluate_config);
  // Versions, not rounds; concurrency, not a train fraction.
  for (auto& l : lines) {
    if (l.rfind("    ├── Number of rounds:", 0) == 0)
      l = "    ├── Number of server updates: " + std::to_string(async_.num_server_updates) +
          " (or " + format_double("%g", async_.max_seconds) + "s)";
    if (l.rfind("    │       ├──Fraction: train", 0) == 0)
      l = "    │       ├──Fraction: evaluate (" + format_double("%.2f", options().fraction_evaluate) +
          ")";
    if (l.rfind("    │       ├──Minimum nodes: train", 0) == 0)
      l = "    │       ├──Minimum nodes: evaluate (" + std::to_string(options().min_evaluate_nodes) +
          ")";
  }
  return insert_settings(
      std::move(lines), "Asynchronous settings",
      {"Concurrency: " + std::to_string(async_.concurrency),
       "Staleness function: " + async_.staleness.describe(),
       "Max staleness: " +
           (async_.max_staleness ? std::to_string(*async_.max_staleness) : std::string{"none"}),
       std::string{"Sampling: "} + to_string(async_.sampling),
       "Evaluate every: " + (async_.evaluate_every ? std::to_string(async_.evaluate_every) + " version(s)"
                                                   : std::string{"never"})});
}

int async_strategy::resume_async(const checkpoint_store& store, int total, strategy_result& result,
                                 std::mt19937_64& rng, size_t& applied, size_t& failed, std::string& first) {
  auto loaded = store.load();
  if (!loaded) throw run_error(loaded.error().what);
  if (!*loaded) return 0;
  auto& s = **loaded;
  auto where = "checkpoint '" + store.file().string() + "'";
  auto saved = state_value<std::string>(s, "checkpoint", "strategy");
  auto version = state_value<int64_t>(s, "checkpoint", "version");
  auto versions = state_value<int64_t>(s, "checkpoint", "num_versions");
  auto* global = s.arrays("global");
  if (!saved || !version || !versions || global == nullptr)
    throw run_error(where + " has no version, strategy or arrays (a round loop's checkpoint?)");
  if (*saved != name()) throw run_error(where + " was written by " + *saved + ", not " + name());
  if (*versions != total)
    throw run_error(where + " is of a run of " + std::to_string(*versions) + " versions, not " +
                    std::to_string(total));
  if (auto ok = restore_history(s, result); !ok) throw run_error(where + ": " + ok.error().what);
  if (auto ok = restore_state(s); !ok) throw run_error(where + ": " + ok.error().what);
  if (auto ok = restore_rng(s, "async", "rng", rng); !ok) throw run_error(where + ": " + ok.error().what);
  auto a = state_value<int64_t>(s, "async", "applied");
  auto f = state_value<int64_t>(s, "async", "failed");
  auto why = state_value<std::string>(s, "async", "first_failure");
  if (!a || !f || !why) throw run_error(where + ": its asynchronous counters are missing");
  applied = static_cast<size_t>(*a);
  failed = static_cast<size_t>(*f);
  first = *why;
  result.arrays = *global;
  return static_cast<int>(*version);
}

void async_strategy::checkpoint_async(checkpoint_store& store, int version, int total,
                                      const strategy_result& result, const std::mt19937_64& rng,
                                      size_t applied, size_t failed, const std::string& first) {
  record_dict s;
  s.insert_or_assign("checkpoint", config_record{{"strategy", name()},
                                                 {"version", static_cast<int64_t>(version)},
                                                 {"num_versions", static_cast<int64_t>(total)}});
  s.insert_or_assign("global", result.arrays);
  s.insert_or_assign("async", config_record{{"rng", rng_state(rng)},
                                            {"applied", static_cast<int64_t>(applied)},
                                            {"failed", static_cast<int64_t>(failed)},
                                            {"first_failure", first}});
  save_history(result, s);
  save_state(s);
  auto ok = store.save(s);
  events().on_checkpoint(version, store.last_save_seconds(), store.last_save_bytes(),
                         ok ? std::string{} : ok.error().what);
}

strategy_result async_strategy::start(grid& g, array_record initial_arrays, int,
                                      double timeout_s, config_record train_config,
                                      config_record evaluate_config, evaluate_fn server_evaluate) {
  if (!(timeout_s > 0)) throw run_error("timeout must be positive");
  auto& ev = events();
  auto& o = options();
  const int total = async_.num_server_updates;
  ev.on_start(name(), total, summary(total, initial_arrays, train_config, evaluate_config));
  strategy_result result;
  result.arrays = std::move(initial_arrays);
  auto t0 = clock_type::now();
  int version = 0;
  std::mt19937_64 rng(o.seed ? *o.seed : std::random_device{}());
  size_t applied_total = 0, failed_total = 0;
  std::string first_failure;
  // Checkpoints are taken at version boundaries, where the update buffer
  // is empty: what a crash loses is the updates in flight and those
  // buffered towards the next version, which nodes then train anew.
  auto* checkpoints = current_checkpoint_store();
  if (checkpoints)
    version = resume_async(*checkpoints, total, result, rng, applied_total, failed_total, first_failure);
  if (version > 0) ev.on_resumed(version + 1, total);
  if (server_evaluate && version == 0)
    if (auto m = server_evaluate(0, result.arrays)) {
      ev.on_server_evaluation(0, *m);
      result.evaluate_metrics_serverapp[0] = std::move(*m);
    }

  auto stream = g.open_stream();
  version_report pending;
  reply_metrics pending_metrics;
  // A run that fails reports what it had up to then (its versions, their
  // failures) before the exception goes on to end it.
  try {
    size_t available = g.wait_for_nodes(o.min_available_nodes, o.min_available_timeout_s);
    if (available < o.min_available_nodes)
      throw run_error("only " + std::to_string(available) + " of the " +
                      std::to_string(o.min_available_nodes) +
                      " nodes required by min_available_nodes are connected after waiting " +
                      format_double("%.0f", o.min_available_timeout_s) + "s");

    std::map<int, array_record> bases{{version, result.arrays}};  // global arrays by version, while needed
    std::unordered_map<std::string, training> in_flight;
    std::set<uint64_t> busy;

    // Gives `prefer` (when idle and connected) or a random idle node the
    // current global model; false when no node is idle.
    auto launch = [&](std::optional<uint64_t> prefer) {
      auto ids = g.node_ids();
      std::sort(ids.begin(), ids.end());
      std::vector<uint64_t> idle;
      for (auto id : ids)
        if (busy.count(id) == 0) idle.push_back(id);
      if (idle.empty()) return false;
      uint64_t node = idle[std::uniform_int_distribution<size_t>(0, idle.size() - 1)(rng)];
      if (prefer && std::find(idle.begin(), idle.end(), *prefer) != idle.end()) node = *prefer;
      auto config = train_config;
      config.insert_or_assign("server-round", int64_t{version});
      config.insert_or_assign("model-version", int64_t{version});
      record_dict content;
      content.insert_or_assign(o.arrayrecord_key, result.arrays);
      content.insert_or_assign(o.configrecord_key, std::move(config));
      auto m = g.create_message(std::move(content), "train", node, std::to_string(version), timeout_s);
      if (!m) return false;
      auto sent = stream->send({std::move(*m)}, timeout_s);
      if (sent.empty() || sent[0].empty()) return false;
      in_flight.emplace(sent[0], training{node, version});
      busy.insert(node);
      return true;
    };
    auto fill = [&] {
      while (in_flight.size() < async_.concurrency && launch(std::nullopt)) {
      }
    };
    auto failed = [&](uint64_t node, std::string why) {
      ev.on_reply_failed(version + 1, run_phase::train, node, why);
      if (first_failure.empty()) first_failure = why;
      ++failed_total;
      ++pending.failures;
      pending.failure_reasons.push_back(std::move(why));
    };

    ev.on_sampled(1, run_phase::train, std::min(async_.concurrency, available), available);
    fill();
    while (version < total && !run_stop_requested()) {
      double left = async_.max_seconds - seconds_since(t0);
      if (left <= 0) break;
      if (in_flight.empty()) {
        // Every node is gone or busy elsewhere: wait for one to come back.
        if (g.wait_for_nodes(1, std::min(left, o.min_available_timeout_s)) == 0)
          throw run_error("no node left to train after version " + std::to_string(version));
        fill();
        if (in_flight.empty()) continue;
      }
      auto reply = stream->next(left);
      if (!reply) continue;  // time is up, or a stop was requested
      // The fewest trainings in flight while this version gathered its updates.
      pending.in_flight_min = pending.applied() + pending.failures == 0
                                  ? in_flight.size()
                                  : std::min(pending.in_flight_min, in_flight.size());
      auto it = in_flight.find(reply->meta().reply_to_message_id);
      if (it == in_flight.end()) {
        // Its instruction was answered already: a second copy, counted as
        // a failure and never applied again (as a round counts one).
        failed(reply->meta().src_node_id, "node " + std::to_string(reply->meta().src_node_id) +
                                              ": duplicate reply");
        continue;
      }
      auto [node, base_version] = it->second;
      in_flight.erase(it);
      busy.erase(node);
      auto who = "node " + std::to_string(node);
      bool node_ok = true;
      int64_t tau = version - base_version;
      if (reply->has_error()) {
        failed(node, who + ": error " + std::to_string(reply->error().code) + ": " +
                         reply->error().reason);
        node_ok = false;
      } else if (async_.max_staleness && tau > *async_.max_staleness) {
        failed(node, who + ": stale: τ = " + std::to_string(tau) + " > " +
                         std::to_string(*async_.max_staleness));
      } else {
        auto arrays = reply_arrays(*reply, o.arrayrecord_key);
        auto weight = arrays ? reply_weight(*reply, o.weighted_by_key) : expected<double>{arrays.error()};
        expected<void> ok = weight ? check_layout(**arrays, result.arrays) : expected<void>{weight.error()};
        if (ok) ok = check_finite(**arrays);
        if (!ok) {
          failed(node, who + ": rejected: " + ok.error().what);
        } else {
          bool moved = absorb(result.arrays, **arrays, bases.at(base_version), tau, *weight);
          pending.staleness.push_back(tau);
          pending_metrics.add(*reply);
          ++applied_total;
          ev.on_reply_accepted(version + 1, run_phase::train, node);
          if (moved) {
            pending.version = ++version;
            pending.seconds = seconds_since(t0);
            bases[version] = result.arrays;
            ev.on_version(pending, total);
            if (o.train_metrics_aggr_fn && !pending_metrics.empty()) {
              auto m = o.train_metrics_aggr_fn(pending_metrics.in_node_order(), o.weighted_by_key);
              ev.on_aggregated(version, run_phase::train, m);
              result.train_metrics_clientapp[version] = std::move(m);
            }
            result.versions.push_back(std::move(pending));
            pending = {};
            pending_metrics = {};
            if (async_.evaluate_every > 0 && version % async_.evaluate_every == 0) {
              evaluate_round(g, version, timeout_s, evaluate_config, result);
              if (server_evaluate)
                if (auto m = server_evaluate(version, result.arrays)) {
                  ev.on_server_evaluation(version, *m);
                  result.evaluate_metrics_serverapp[version] = std::move(*m);
                }
            }
            if (checkpoints && !run_stop_requested())
              checkpoint_async(*checkpoints, version, total, result, rng, applied_total, failed_total,
                               first_failure);
          }
        }
      }
      // Versions no training in flight started from are let go.
      for (auto b = bases.begin(); b != bases.end();) {
        bool used = b->first == version;
        for (auto& [id, t] : in_flight) used = used || t.version == b->first;
        b = used ? std::next(b) : bases.erase(b);
      }
      if (version >= total) break;
      bool same = async_.sampling == async_options::sampling_policy::same && node_ok;
      launch(same ? std::optional<uint64_t>{node} : std::nullopt);
      fill();
    }
  } catch (const std::exception& e) {
    stream.reset();
    result.unapplied = std::move(pending);
    result.unapplied.version = 0;
    result.seconds = seconds_since(t0);
    result.error = e.what();
    ev.on_finished(result);
    throw;
  }
  stream.reset();  // what is still in flight is no longer wanted
  result.unapplied = std::move(pending);
  result.unapplied.version = 0;
  result.seconds = seconds_since(t0);
  result.stopped = run_stop_requested();
  if (applied_total == 0 && failed_total > 0)
    result.error = "every train reply of the run failed; the first: " + first_failure;
  ev.on_finished(result);
  if (!result.error.empty()) throw run_error(result.error);
  return result;
}

}  // namespace stamen
