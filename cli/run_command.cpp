#include "cli/run_command.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>

#include "cli/app_loader.hpp"
#include "cli/cluster.hpp"
#include "cli/report_command.hpp"
#include "cli/signals.hpp"
#include "cli/simulation.hpp"
#include "config/app_config.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/report/flower_log.hpp"
#include "runtime/report/progress_line.hpp"
#include "runtime/report/result_json.hpp"

namespace stamen {

namespace {

namespace fs = std::filesystem;

// The app's config with every override applied, and the federation to run on.
struct prepared_run {
  app_config app;
  federation_config federation;
  std::string app_dir;
  std::string checkpoint_dir;
  std::string resume_dir;
  std::string report_dir;
};

expected<prepared_run> prepare(const run_command& cmd) {
  auto cfg = load_app_config(cmd.app_dir);
  if (!cfg) return cfg.error();
  for (auto& spec : cmd.run_config)
    if (auto ok = apply_run_config_overrides(cfg->run_config, spec, &cfg->domains); !ok) return ok.error();
  auto fed = cfg->federation(cmd.federation);
  if (!fed) return fed.error();
  for (auto& spec : cmd.federation_config)
    if (auto ok = apply_federation_overrides(*fed, spec); !ok) return ok.error();
  if (!cmd.faults_file.empty()) {
    auto plan = load_fault_plan(cmd.faults_file);
    if (!plan) return plan.error();
    cfg->faults = std::move(*plan);
  }
  // Every value is checked before any node starts.
  if (auto ok = check_run_config(cfg->run_config, cfg->domains); !ok) return ok.error();
  if (!fed->address)
    if (auto ok = check_fault_plan(cfg->faults, *fed); !ok) return ok.error();
  return prepared_run{std::move(*cfg), std::move(*fed), cmd.app_dir, cmd.checkpoint_dir, cmd.resume_dir,
                      cmd.report_dir};
}

// A run config as JSON (bytes values, which TOML cannot hold, as their size).
nlohmann::json config_json(const config_record& rc) {
  auto out = nlohmann::json::object();
  for (auto& [k, v] : rc)
    std::visit(
        [&](auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, bytes> || std::is_same_v<T, std::vector<bytes>>)
            out[k] = "(" + std::to_string(x.size()) + " bytes)";
          else
            out[k] = x;
        },
        v);
  return out;
}

nlohmann::json faults_json(const std::vector<fault_event>& injected) {
  auto out = nlohmann::json::array();
  for (auto& e : injected)
    out.push_back({{"round", e.round}, {"node", e.node_index}, {"node_id", e.node_id},
                   {"action", to_string(e.action)}, {"phase", to_string(e.phase)}});
  return out;
}

// An app built out of tree sits in its own build/ directory.
std::vector<fs::path> app_search_path(const std::string& app_dir) {
  auto search = default_app_search_path();
  search.insert(search.begin(), {fs::path{app_dir} / "build", fs::path{app_dir}});
  return search;
}

int simulate(const prepared_run& run, bool json, bool quiet, const logger& log) {
  // SIGINT or SIGTERM stops the run after the phase in flight; the result so
  // far is reported as usual, and the exit code says which signal it was.
  // Blocked before anything (the app's library included) starts a thread.
  auto stop = std::make_shared<run_stop>();
  auto signal = std::make_shared<std::atomic<int>>(0);
  on_stop_signal(block_stop_signals(), [stop, signal](int sig) {
    *signal = sig;
    stop->request();
  });
  auto& cfg = run.app;
  auto app = load_app(cfg.library, app_search_path(run.app_dir));
  if (!app) {
    std::cerr << "stamen: " << app.error().what << '\n';
    return 2;
  }
  if (app->components.check_run_config)
    if (auto why = app->components.check_run_config(cfg.run_config, run.federation.num_supernodes)) {
      std::cerr << "stamen: " << *why << '\n';
      return 2;
    }
  log.info("Starting Stamen run of '" + cfg.name + "' on federation '" + run.federation.name +
           "' (" + std::to_string(run.federation.num_supernodes) + " SuperNodes)");
  log.info("Run config: " + to_string(cfg.run_config));
  if (!cfg.faults.empty())
    log.info("Fault plan: " + std::to_string(cfg.faults.rules.size()) + " rule(s), seed " +
             std::to_string(cfg.faults.seed));
  // A simulation's checkpoints: --checkpoint-dir starts afresh (and will
  // not overwrite a run's checkpoint), --resume goes on from one. The label
  // ties a checkpoint to this app, run config and federation.
  std::unique_ptr<checkpoint_store> checkpoints;
  if (!run.checkpoint_dir.empty() || !run.resume_dir.empty()) {
    auto dir = run.resume_dir.empty() ? run.checkpoint_dir : run.resume_dir;
    checkpoints = std::make_unique<checkpoint_store>(
        dir, cfg.name + " " + to_string(cfg.run_config) + " on " + run.federation.name + " (" +
                 std::to_string(run.federation.num_supernodes) + " nodes, seed " +
                 std::to_string(run.federation.seed) + ")");
    std::error_code ec;
    bool exists = std::filesystem::exists(checkpoints->file(), ec);
    if (run.resume_dir.empty() && exists) {
      std::cerr << "stamen: " << checkpoints->file().string()
                << " holds a run's checkpoint already: go on from it with --resume " << dir
                << ", or remove it\n";
      return 2;
    }
    if (!run.resume_dir.empty() && !exists) {
      std::cerr << "stamen: --resume " << dir << ": there is no checkpoint there ("
                << checkpoints->file().string() << ")\n";
      return 2;
    }
    if (!run.resume_dir.empty())
      if (auto cp = checkpoints->load(); !cp) {
        std::cerr << "stamen: --resume: " << cp.error().what << '\n';
        return 2;
      }
  }
  std::vector<fault_event> injected;
  run_events events;
  events.add(std::make_shared<flower_log>(log));
  // The live line, only where a person watches: stderr a terminal, and
  // not --quiet.
  bool live = ::isatty(STDERR_FILENO) == 1 && !quiet;
  if (live) {
    logger::set_status_stream(&std::clog);
    events.add(std::make_shared<progress_line>());
  }
  auto capture = std::make_shared<result_capture>();
  events.add(capture);
  auto result = run_simulation(app->components, cfg.run_config, run.federation, log, events,
                               stop.get(), cfg.faults, &injected,
                               fs::absolute(run.app_dir).lexically_normal().string(), checkpoints.get());
  if (live) logger::set_status_stream(nullptr);
  if (!result) log.error(result.error().what);
  // What the strategy reported is printed even when the run failed (every
  // train reply failed, say): the failures and their reasons are in it.
  auto doc = capture->result() ? nlohmann::json::parse(to_json(*capture->result()))
                               : nlohmann::json::object();
  if (!result) doc["error"] = result.error().what;
  doc["faults"] = faults_json(injected);
  doc["run_config"] = config_json(cfg.run_config);
  doc["federation"] = {{"name", run.federation.name}, {"num-supernodes", run.federation.num_supernodes}};
  if (json) std::cout << doc.dump(2) << std::endl;
  if (!run.report_dir.empty()) {
    auto ok = write_report({{cfg.name, doc}}, run.report_dir);
    if (!ok) log.error("report: " + ok.error().what);
    else log.info("Report written to " + (fs::path{run.report_dir} / "report.html").string());
  }
  if (*signal != 0) return 128 + *signal;
  return result ? 0 : 1;
}

}  // namespace

int run_app(const run_command& cmd) {
  auto level = cmd.quiet ? logger::level::warning : cmd.verbose ? logger::level::debug : logger::level::info;
  logger::set_default_level(level);
  logger log{std::clog, level};
  auto run = prepare(cmd);
  if (!run) {
    std::cerr << "stamen: " << run.error().what << '\n';
    return 2;
  }
  if (run->federation.address && (!cmd.checkpoint_dir.empty() || !cmd.resume_dir.empty())) {
    std::cerr << "stamen: --checkpoint-dir and --resume are for simulations; a superlink checkpoints "
                 "every run in its state directory and resumes it after a restart\n";
    return 2;
  }
  if (!cmd.report_dir.empty() && cmd.detach) {
    std::cerr << "stamen: --report waits for the run's result, --detach does not; later, `stamen report RUN_ID`\n";
    return 2;
  }
  if (cmd.detach && !run->federation.address) {
    std::cerr << "stamen: --detach needs a cluster federation (one with an address)\n";
    return 2;
  }
  if (run->federation.address) {
    if (!run->app.faults.empty())
      log.warn("fault plans apply to simulations; the cluster run ignores them");
    return run_on_cluster(run->app, run->app.run_config, run->federation, app_search_path(run->app_dir),
                          cmd.json, cmd.detach, cmd.report_dir,
                          ::isatty(STDERR_FILENO) == 1 && !cmd.quiet && !cmd.detach, log);
  }
  return simulate(*run, cmd.json, cmd.quiet, log);
}

}  // namespace stamen
