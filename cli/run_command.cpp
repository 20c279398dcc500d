#include "cli/run_command.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/app_loader.hpp"
#include "cli/cluster.hpp"
#include "cli/simulation.hpp"
#include "config/app_config.hpp"
#include "runtime/result_json.hpp"

namespace stamen {

namespace {

// The app's config with every override applied, and the federation to run on.
struct prepared_run {
  app_config app;
  federation_config federation;
};

expected<prepared_run> prepare(const run_command& cmd) {
  auto cfg = load_app_config(cmd.app_dir);
  if (!cfg) return cfg.error();
  for (auto& spec : cmd.run_config)
    if (auto ok = apply_run_config_overrides(cfg->run_config, spec); !ok) return ok.error();
  auto fed = cfg->federation(cmd.federation);
  if (!fed) return fed.error();
  for (auto& spec : cmd.federation_config)
    if (auto ok = apply_federation_overrides(*fed, spec); !ok) return ok.error();
  if (!cmd.faults_file.empty()) {
    auto plan = load_fault_plan(cmd.faults_file);
    if (!plan) return plan.error();
    cfg->faults = std::move(*plan);
  }
  return prepared_run{std::move(*cfg), std::move(*fed)};
}

nlohmann::json faults_json(const std::vector<fault_event>& injected) {
  auto out = nlohmann::json::array();
  for (auto& e : injected)
    out.push_back({{"round", e.round}, {"node", e.node_index}, {"node_id", e.node_id},
                   {"action", to_string(e.action)}, {"phase", to_string(e.phase)}});
  return out;
}

int simulate(const prepared_run& run, bool json, const logger& log) {
  auto& cfg = run.app;
  auto app = load_app(cfg.library, default_app_search_path());
  if (!app) {
    std::cerr << "stamen: " << app.error().what << '\n';
    return 2;
  }
  log.info("Starting Stamen run of '" + cfg.name + "' on federation '" + run.federation.name +
           "' (" + std::to_string(run.federation.num_supernodes) + " SuperNodes)");
  log.info("Run config: " + to_string(cfg.run_config));
  if (!cfg.faults.empty())
    log.info("Fault plan: " + std::to_string(cfg.faults.rules.size()) + " rule(s), seed " +
             std::to_string(cfg.faults.seed));
  std::vector<fault_event> injected;
  auto result = run_simulation(app->components, cfg.run_config, run.federation, log, cfg.faults,
                               &injected);
  if (!result) {
    log.error(result.error().what);
    if (json)
      std::cout << nlohmann::json{{"error", result.error().what}, {"faults", faults_json(injected)}}
                       .dump(2)
                << std::endl;
    return 1;
  }
  if (json) {
    auto doc = *result ? nlohmann::json::parse(to_json(**result)) : nlohmann::json::object();
    doc["faults"] = faults_json(injected);
    std::cout << doc.dump(2) << std::endl;
  }
  return 0;
}

}  // namespace

int run_app(const run_command& cmd) {
  logger log{std::clog};
  auto run = prepare(cmd);
  if (!run) {
    std::cerr << "stamen: " << run.error().what << '\n';
    return 2;
  }
  if (run->federation.address) {
    if (!run->app.faults.empty())
      log.warn("fault plans apply to simulations; the cluster run ignores them");
    return run_on_cluster(run->app, run->app.run_config, run->federation, cmd.json, log);
  }
  return simulate(*run, cmd.json, log);
}

}  // namespace stamen
