// The `stamen` command.
#include <CLI/CLI.hpp>

#include <iostream>

#include "config/app_config.hpp"
#include "runtime/app_loader.hpp"
#include "runtime/simulation.hpp"

namespace {

int run_command(const std::string& app_dir, const std::vector<std::string>& overrides,
                const std::string& federation_name, const std::string& format) {
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
  auto app = load_app(cfg->library, default_app_search_path());
  if (!app) {
    std::cerr << "stamen: " << app.error().what << '\n';
    return 2;
  }
  log.info("Starting Stamen run of '" + cfg->name + "' on federation '" + fed->name + "' (" +
           std::to_string(fed->num_supernodes) + " SuperNodes)");
  log.info("Run config: " + to_string(cfg->run_config));
  auto result = run_simulation(app->components, cfg->run_config, *fed, log);
  if (!result) {
    log.error(result.error().what);
    return 1;
  }
  if (format == "json") {
    if (*result)
      std::cout << (*result)->to_json() << std::endl;
    else
      std::cout << "{}" << std::endl;
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
  run->add_option("--format", format, "Output: text (logs only) or json (result on stdout)")
      ->check(CLI::IsMember({"text", "json"}));

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (run->parsed()) return run_command(app_dir, overrides, federation_name, format);
  return 2;
}
