// The `stamen` command.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

#include "config/app_config.hpp"
#include "runtime/app_loader.hpp"
#include "runtime/simulation.hpp"

namespace {

int run_command(const std::string& app_dir, const std::vector<std::string>& overrides,
                const std::string& federation_name, const std::string& format,
                const std::string& faults_file) {
  using namespace stamen;
  logger log{std::clog};
  auto cfg = load_app_config(app_dir);
  if (!cfg) {
    std::cerr << "stamen: " << cfg.error().what << '\n';
    return 2;
  }
  for (auto& spec : overrides)
    if (auto ok = apply_run_config_overrides(cfg->run_config, spec); !ok) {
      std::cerr << "stamen: " << ok.error().what << '\n';
      return 2;
    }
  auto fed = cfg->federation(federation_name);
  if (!fed) {
    std::cerr << "stamen: " << fed.error().what << '\n';
    return 2;
  }
  if (!faults_file.empty()) {
    auto plan = load_fault_plan(faults_file);
    if (!plan) {
      std::cerr << "stamen: " << plan.error().what << '\n';
      return 2;
    }
    cfg->faults = std::move(*plan);
  }
  auto app = load_app(cfg->library, default_app_search_path());
  if (!app) {
    std::cerr << "stamen: " << app.error().what << '\n';
    return 2;
  }
  log.info("Starting Stamen run of '" + cfg->name + "' on federation '" + fed->name + "' (" +
           std::to_string(fed->num_supernodes) + " SuperNodes)");
  log.info("Run config: " + to_string(cfg->run_config));
  if (!cfg->faults.empty())
    log.info("Fault plan: " + std::to_string(cfg->faults.rules.size()) + " rule(s), seed " +
             std::to_string(cfg->faults.seed));
  std::vector<fault_event> injected;
  auto result = run_simulation(app->components, cfg->run_config, *fed, log, cfg->faults, &injected);
  nlohmann::json faults = nlohmann::json::array();
  for (auto& e : injected)
    faults.push_back({{"round", e.round}, {"node", e.node_index}, {"node_id", e.node_id},
                      {"action", to_string(e.action)}, {"phase", to_string(e.phase)}});
  if (!result) {
    log.error(result.error().what);
    if (format == "json")
      std::cout << nlohmann::json{{"error", result.error().what}, {"faults", faults}}.dump(2)
                << std::endl;
    return 1;
  }
  if (format == "json") {
    auto doc = *result ? nlohmann::json::parse((*result)->to_json()) : nlohmann::json::object();
    doc["faults"] = faults;
    std::cout << doc.dump(2) << std::endl;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Stamen: federated learning as an actor system"};
  cli.require_subcommand(1);

  auto* run = cli.add_subcommand("run", "Run an app on a federation");
  std::string app_dir;
  std::vector<std::string> overrides;
  std::string federation_name;
  std::string format = "text";
  run->add_option("app", app_dir, "App directory (with stamen.toml)")->required();
  run->add_option("--run-config", overrides,
                  "Overrides: \"key=value key=value\" or a TOML file (repeatable)");
  run->add_option("--federation", federation_name, "Federation from the app's [federations]");
  std::string faults_file;
  run->add_option("--faults", faults_file, "TOML file with a [faults] table (replaces the app's)");
  run->add_option("--format", format, "Output: text (logs only) or json (result on stdout)")
      ->check(CLI::IsMember({"text", "json"}));

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (run->parsed()) return run_command(app_dir, overrides, federation_name, format, faults_file);
  return 2;
}
