// The `stamen` command.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

#include "actors/node_identity.hpp"
#include "config/app_config.hpp"
#include "runtime/cluster.hpp"
#include "runtime/app_loader.hpp"
#include "runtime/simulation.hpp"

namespace {

int run_command(const std::string& app_dir, const std::vector<std::string>& overrides,
                const std::string& federation_name, const std::string& format,
                const std::string& faults_file,
                const std::vector<std::string>& federation_overrides) {
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
  for (auto& spec : federation_overrides)
    if (auto ok = apply_federation_overrides(*fed, spec); !ok) {
      std::cerr << "stamen: " << ok.error().what << '\n';
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
  if (fed->address) {
    if (!faults_file.empty() || !cfg->faults.empty())
      log.warn("fault plans apply to simulations; the cluster run ignores them");
    return run_on_cluster(*cfg, cfg->run_config, *fed, format == "json", log);
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
  std::vector<std::string> federation_overrides;
  run->add_option("--federation-config", federation_overrides,
                  "Federation overrides: \"address=HOST:PORT num-supernodes=N ...\" (repeatable)");
  std::string faults_file;
  run->add_option("--faults", faults_file, "TOML file with a [faults] table (replaces the app's)");
  run->add_option("--format", format, "Output: text (logs only) or json (result on stdout)")
      ->check(CLI::IsMember({"text", "json"}));

  // TLS files, shared by the cluster commands.
  std::string ca, cert, key;
  auto add_tls = [&](CLI::App* sub) {
    auto* g = sub->add_option_group("TLS", "Mutual TLS: all three files, or none for plaintext");
    auto* a = g->add_option("--root-certificates", ca, "CA certificate (PEM) that signs every peer");
    auto* b = g->add_option("--certificate", cert, "This endpoint's certificate (PEM)");
    auto* c = g->add_option("--private-key", key, "This endpoint's private key (PEM)");
    a->needs(b, c);
    b->needs(a, c);
    c->needs(a, b);
  };
  double heartbeat = 0.5, timeout = 2.0;

  auto* superlink = cli.add_subcommand("superlink", "Serve a grid for SuperNodes and runs");
  uint16_t port = 9092;
  std::string bind;
  std::vector<std::string> allow;
  superlink->add_option("--port", port, "Port to listen on (0: any free port)");
  superlink->add_option("--bind", bind, "Address to listen on (default: all)");
  superlink->add_option("--heartbeat", heartbeat, "Seconds between pings on an idle link");
  superlink->add_option("--timeout", timeout, "Seconds of silence after which a peer is dead");
  superlink->add_option("--allow-node", allow,
                        "Node key allowed to register: a SHA-256 fingerprint or a PEM file (repeatable; needs TLS)");
  add_tls(superlink);

  auto* supernode = cli.add_subcommand("supernode", "Serve a ClientApp for a superlink");
  std::string superlink_addr, node_config;
  double backoff_max = 8;
  supernode->add_option("--superlink", superlink_addr, "HOST:PORT of the superlink")->required();
  supernode->add_option("--node-config", node_config, "\"k=v k=v\": this node's node_config");
  supernode->add_option("--max-backoff", backoff_max, "Longest wait between reconnection attempts (s)");
  add_tls(supernode);

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (run->parsed()) return run_command(app_dir, overrides, federation_name, format, faults_file,
                                        federation_overrides);
  stamen::link_options link;
  link.heartbeat_s = heartbeat;
  link.timeout_s = timeout;
  if (!ca.empty()) link.tls = stamen::tls_files{ca, cert, key};
  stamen::logger log{std::clog};
  if (superlink->parsed()) {
    if (timeout <= heartbeat) {
      log.error("superlink: --timeout must exceed --heartbeat");
      return 2;
    }
    for (auto& a : allow) {
      if (a.size() == 64 && a.find_first_not_of("0123456789abcdef") == std::string::npos) {
        link.allowed_nodes.push_back(a);
        continue;
      }
      auto fp = stamen::key_fingerprint(a);
      if (!fp) {
        log.error("superlink: --allow-node " + a + ": " + fp.error().what);
        return 2;
      }
      link.allowed_nodes.push_back(*fp);
    }
    if (!link.allowed_nodes.empty() && !link.tls) {
      log.error("superlink: --allow-node needs TLS (--root-certificates, --certificate, --private-key)");
      return 2;
    }
    return stamen::run_superlink({port, bind, link}, log);
  }
  if (supernode->parsed()) return stamen::run_supernode({superlink_addr, node_config, link, backoff_max}, log);
  return 2;
}
