// The `stamen` command: its verbs and their options. Each verb's work lives
// in its own file (run_command, cluster); this one only parses.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <tuple>
#include <iostream>

#include "actors/compute_pool.hpp"
#include "actors/node_identity.hpp"
#include "cli/cluster.hpp"
#include "cli/control_command.hpp"
#include "cli/flower_supernode.hpp"
#include "cli/new_command.hpp"
#include "cli/report_command.hpp"
#include "cli/run_command.hpp"

namespace {

using namespace stamen;

void add_run(CLI::App& cli, run_command& cmd, std::string& format) {
  auto* run = cli.add_subcommand("run", "Run an app on a federation");
  run->add_option("app", cmd.app_dir, "App directory (with stamen.toml)")->required();
  run->add_option("--run-config", cmd.run_config,
                  "Overrides: \"key=value key=value\" or a TOML file (repeatable)");
  run->add_option("--federation", cmd.federation, "Federation from the app's [federations]");
  run->add_option("--federation-config", cmd.federation_config,
                  "Federation overrides: \"address=HOST:PORT num-supernodes=N ...\" (repeatable)");
  run->add_option("--faults", cmd.faults_file, "TOML file with a [faults] table (replaces the app's)");
  run->add_option("--format", format, "Output: text (logs only) or json (result on stdout)")
      ->check(CLI::IsMember({"text", "json"}));
  run->add_flag("--detach", cmd.detach, "Cluster: print the run's id once submitted and return");
  run->add_option("--report", cmd.report_dir, "Write report.html (charts, failures, faults) into this directory once the run ends");
  auto* quiet = run->add_flag("--quiet,-q", cmd.quiet, "Only warnings and errors (no Flower log, no live line)");
  auto* verbose = run->add_flag("--verbose,-v", cmd.verbose, "Debug lines too (checkpoints, frames, ...)");
  quiet->excludes(verbose);
  auto* cp = run->add_option("--checkpoint-dir", cmd.checkpoint_dir,
                             "Simulation: checkpoint the strategy after each round into this directory");
  auto* resume = run->add_option("--resume", cmd.resume_dir,
                                 "Simulation: go on from the checkpoint in this directory (and keep checkpointing there)");
  cp->excludes(resume);
}

// ls, log, stop and pull: a run id (all but ls), then the app directory
// whose federation names the superlink.
CLI::App* add_control(CLI::App& cli, control_command& cmd, const std::string& verb, const std::string& what) {
  auto* sub = cli.add_subcommand(verb, what);
  if (verb != "ls") sub->add_option("run-id", cmd.run_id, "The run's id (as `stamen run` and `ls` print it)")->required();
  sub->add_option("app", cmd.app_dir, "App directory whose stamen.toml names the federation (default: .)");
  sub->add_option("--federation", cmd.federation, "Federation from the app's [federations]");
  // One value per occurrence: the app directory may follow it.
  sub->add_option("--federation-config", cmd.federation_config,
                  "Federation overrides: \"address=HOST:PORT root-certificates=... ...\" (repeatable)")
      ->allow_extra_args(false);
  return sub;
}

// TLS files, shared by the cluster commands: all three, or none.
// `checked`: the three must come together, which the supernode checks
// itself (with --protocol flower, --root-certificates comes alone).
void add_tls(CLI::App* sub, std::string& ca, std::string& cert, std::string& key, bool checked = true) {
  auto* g = sub->add_option_group("TLS", "Mutual TLS: all three files, or none for plaintext");
  auto* a = g->add_option("--root-certificates", ca, "CA certificate (PEM) that signs every peer");
  auto* b = g->add_option("--certificate", cert, "This endpoint's certificate (PEM)");
  auto* c = g->add_option("--private-key", key, "This endpoint's private key (PEM)");
  if (!checked) return;
  a->needs(b, c);
  b->needs(a, c);
  c->needs(a, b);
}

// Keys on the command line: SHA-256 fingerprints as given, PEM files by their
// key's. `flag` names the option in errors ("superlink: --allow-node").
bool resolve_key_list(const std::vector<std::string>& allow, std::vector<std::string>& out,
                      const std::string& flag, const logger& log) {
  for (auto& a : allow) {
    auto fp = resolve_key(a);
    if (!fp) {
      log.error(flag + " " + a + ": " + fp.error().what);
      return false;
    }
    out.push_back(*fp);
  }
  return true;
}

int start_superlink(superlink_command cmd, const std::vector<std::string>& allow,
                    const std::vector<std::string>& submitters, const std::vector<std::string>& admins,
                    const logger& log) {
  if (cmd.link.timeout_s <= cmd.link.heartbeat_s) {
    log.error("superlink: --timeout must exceed --heartbeat");
    return 2;
  }
  if (!resolve_key_list(allow, cmd.link.allowed_nodes, "superlink: --allow-node", log)) return 2;
  if (!resolve_key_list(submitters, cmd.allowed_submitters, "superlink: --allow-submitter", log))
    return 2;
  if (!resolve_key_list(admins, cmd.admin_submitters, "superlink: --admin-key", log)) return 2;
  for (auto [list, flag] : {std::pair{&cmd.link.allowed_nodes, "--allow-node"},
                            std::pair{&cmd.allowed_submitters, "--allow-submitter"},
                            std::pair{&cmd.admin_submitters, "--admin-key"}})
    if (!list->empty() && !cmd.link.tls) {
      log.error(std::string{"superlink: "} + flag +
                " needs TLS (--root-certificates, --certificate, --private-key)");
      return 2;
    }
  return run_superlink(cmd, log);
}

}  // namespace

// The process's exit code `rc`, returned to main, or the process ended here
// when a ClientApp never returned: its thread still runs app code, so the
// static destructors that would pull the app's library and the actor system
// from under it must not run (a simulation, a supernode, and a superlink
// whose ServerApps' nodes run in process alike).
static int exit_code(int rc) {
  if (compute_pool::abandoned() == 0) return rc;
  std::cout.flush();
  std::clog.flush();
  std::_Exit(rc);
}

int main(int argc, char** argv) {
  CLI::App cli{"Stamen: federated learning as an actor system"};
  cli.set_version_flag("--version", std::string{"stamen "} + STAMEN_VERSION);
  cli.require_subcommand(1);

  run_command run;
  std::string format = "text";
  add_run(cli, run, format);

  std::string ca, cert, key;
  double heartbeat = 0.5, timeout = 2.0;

  auto* superlink = cli.add_subcommand("superlink", "Serve a grid for SuperNodes and runs");
  superlink_command link_cmd;
  std::vector<std::string> allow;
  superlink->add_option("--port", link_cmd.port, "Port to listen on (0: any free port)");
  superlink->add_option("--bind", link_cmd.bind, "Address to listen on (default: all)");
  superlink->add_option("--heartbeat", heartbeat, "Seconds between pings on an idle link");
  superlink->add_option("--timeout", timeout, "Seconds of silence after which a peer is dead");
  superlink->add_option("--allow-node", allow,
                        "Node key allowed to register: a SHA-256 fingerprint or a PEM file (repeatable; needs TLS)");
  std::vector<std::string> submitters;
  superlink->add_option("--allow-submitter", submitters,
                        "Submitter key allowed to ship app bundles: a SHA-256 fingerprint or a PEM file "
                        "(repeatable; needs TLS)");
  std::vector<std::string> admins;
  superlink->add_option("--admin-key", admins,
                        "Key that may submit and control every run (stop, log, pull): a SHA-256 fingerprint "
                        "or a PEM file (repeatable; needs TLS). Other submitters control their own runs");
  superlink->add_flag("--insecure-accept-bundles", link_cmd.insecure_accept_bundles,
                      "Run app bundles from any submitter that can connect (remote code execution: "
                      "trusted networks and tests only; listens on 127.0.0.1 unless --bind is given)");
  superlink->add_option("--max-link-nodes", link_cmd.max_link_nodes,
                        "Most SuperNodes one connection may host (a hello claiming more is refused)")
      ->check(CLI::PositiveNumber);
  superlink->add_option("--max-pending-connections", link_cmd.max_pending_peers,
                        "Connections that have not yet said who they are, at most; more are closed")
      ->check(CLI::PositiveNumber);
  superlink->add_option("--handshake-timeout", link_cmd.handshake_timeout_s,
                        "Seconds a connection may take to say who it is (hello, submit or control)")
      ->check(CLI::PositiveNumber);
  superlink->add_option("--state-dir", link_cmd.state_dir,
                        "Directory for runs, their logs and files, and app bundles (default: a temporary "
                        "one, removed on exit)");
  superlink->add_option("--http-port", link_cmd.http_port,
                        "Serve /metrics (Prometheus) and a JSON API on this port (0: any; off by default)")
      ->check(CLI::Range(0, 65535));
  superlink->add_option("--http-address", link_cmd.http_address, "Address of the HTTP side (default: 127.0.0.1)");
  superlink->add_option("--max-concurrent-runs", link_cmd.max_concurrent_runs,
                        "Runs executed at once; later ones wait, pending")
      ->check(CLI::PositiveNumber);
  add_tls(superlink, ca, cert, key);

  auto* supernode = cli.add_subcommand("supernode", "Serve a ClientApp for a superlink");
  supernode_command node_cmd;
  std::string protocol = "stamen";
  flower_supernode_options flower_node;
  supernode->add_option("--superlink", node_cmd.superlink, "HOST:PORT of the superlink")->required();
  supernode->add_option("--protocol", protocol,
                        "stamen (a Stamen superlink) or flower (a Flower 1.23 SuperLink's Fleet API over gRPC)")
      ->check(CLI::IsMember({"stamen", "flower"}));
  supernode->add_option("--app", flower_node.app_dir,
                        "flower: the Stamen app whose ClientApp answers (default: apps/quickstart)");
  supernode->add_flag("--insecure", flower_node.insecure, "flower: plaintext gRPC (Flower's --insecure)");
  supernode->add_option("--auth-supernode-private-key", flower_node.private_key,
                        "flower: the node's EC private key (PEM); default: a fresh one per start");
  supernode->add_option("--heartbeat-interval", flower_node.heartbeat_interval_s,
                        "flower: seconds between heartbeats the SuperLink expects (10..1800)")
      ->check(CLI::Range(10.0, 1800.0));
  supernode->add_option("--poll-interval", flower_node.poll_interval_s,
                        "flower: seconds between PullMessages while there is nothing (default 3, as Flower's)")
      ->check(CLI::PositiveNumber);
  supernode->add_option("--max-wait-time", flower_node.max_wait_s,
                        "flower: give up reconnecting after this many seconds (default: never)")
      ->check(CLI::NonNegativeNumber);
  supernode->add_option("--node-config", node_cmd.node_config, "\"k=v k=v\": this node's node_config");
  supernode->add_option("--nodes", node_cmd.nodes,
                        "SuperNodes hosted by this process behind one link (each its own node id, "
                        "Context and partition; a simulation that spans processes)")
      ->check(CLI::Range(1u, 1u << 22));
  supernode->add_option("--partition-offset", node_cmd.partition_offset,
                        "The first node's partition-id; node i gets offset + i (default 0 with --nodes)")
      ->check(CLI::NonNegativeNumber);
  supernode->add_option("--compute-threads", node_cmd.compute_threads,
                        "ClientApps run at once (default: 1 for one node, one per core with --nodes)")
      ->check(CLI::PositiveNumber);
  supernode->add_option("--max-backoff", node_cmd.backoff_max_s,
                        "Longest wait between reconnection attempts (s)");
  supernode->add_option("--bundle-cache", node_cmd.bundle_cache,
                        "Directory where app bundles are cached by hash (default: ~/.cache/stamen/bundles)");
  supernode->add_flag("--insecure-accept-bundles", node_cmd.insecure_accept_bundles,
                      "Without TLS, run app bundles from whatever answers at --superlink "
                      "(trusted networks and tests only)");
  std::vector<std::string> trusted;
  supernode->add_option("--trust-submitter", trusted,
                        "Run only app bundles signed by this submitter key: a SHA-256 fingerprint or a PEM "
                        "file (repeatable; needs TLS; default: any bundle the authenticated superlink passes on)");
  add_tls(supernode, ca, cert, key, false);
  std::string superlink_name, superlink_key;
  supernode->add_option("--superlink-name", superlink_name,
                        "TLS: the name the superlink's certificate must carry as a DNS or IP "
                        "subject alternative name (default: the host of --superlink)");
  supernode->add_option("--superlink-key", superlink_key,
                        "TLS: pin the superlink's key (its certificate or public key as PEM, or "
                        "its SHA-256 fingerprint)");

  control_command ls_cmd, log_cmd, stop_cmd, pull_cmd;
  std::string ls_format = "text";
  auto* ls = add_control(cli, ls_cmd, "ls", "List a superlink's runs");
  ls->add_option("--format", ls_format, "text (a table) or json")->check(CLI::IsMember({"text", "json"}));
  auto* log_verb = add_control(cli, log_cmd, "log", "Print a run's log");
  log_verb->add_flag("--follow,-f", log_cmd.follow, "Keep printing until the run ends");
  auto* stop = add_control(cli, stop_cmd, "stop", "Stop a run (pending or running)");
  auto* pull = add_control(cli, pull_cmd, "pull", "Copy a run's files (final_model.pt, ...) from the superlink");
  pull->add_option("--dir", pull_cmd.dir, "Where they go (default: ./run-<id>)");

  report_command report_cmd;
  auto* report = cli.add_subcommand("report", "Write report.html from results of `stamen run --format json` or cluster runs");
  report->add_option("results", report_cmd.results,
                     "Result JSON files, or ids of runs on the federation's superlink (several: side by side)")
      ->required();
  report->add_option("--out", report_cmd.out, "Directory for report.html and the charts (default: report)");
  report->add_option("--app", report_cmd.app_dir,
                     "For run ids: the app directory whose stamen.toml names the federation (default: .)");
  report->add_option("--federation", report_cmd.federation, "For run ids: a federation from the app's [federations]");
  report->add_option("--federation-config", report_cmd.federation_config,
                     "For run ids: federation overrides, \"address=HOST:PORT ...\" (repeatable)");

  new_command create;
  auto* make = cli.add_subcommand("new", "Create an app project from a template");
  make->add_option("name", create.name, "The app's name (an identifier)")->required();
  make->add_option("--template", create.template_name,
                  "Template: minimal (a linear model, no torch) or pytorch (the quickstart's CNN)");
  make->add_option("--dir", create.dir, "Where the project's directory goes (default: .)");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (make->parsed()) return new_project(create);
  if (report->parsed()) return run_report(report_cmd);
  for (auto [sub, cmd, verb] : {std::tuple{ls, &ls_cmd, "ls"}, std::tuple{log_verb, &log_cmd, "log"},
                                std::tuple{stop, &stop_cmd, "stop"}, std::tuple{pull, &pull_cmd, "pull"}})
    if (sub->parsed()) {
      cmd->verb = verb;
      cmd->json = ls_format == "json";
      return run_control(*cmd);
    }
  if (cli.got_subcommand("run")) {
    run.json = format == "json";
    return exit_code(run_app(run));
  }
  link_options link;
  link.heartbeat_s = heartbeat;
  link.timeout_s = timeout;
  if (!ca.empty()) link.tls = tls_files{ca, cert, key};
  logger log{std::clog};
  if (superlink->parsed()) {
    link_cmd.link = link;
    return exit_code(start_superlink(link_cmd, allow, submitters, admins, log));
  }
  if (protocol == "flower") {
    if (!cert.empty() || !key.empty()) {
      log.error("supernode: --protocol flower: a Flower SuperNode has no certificate; give --root-certificates alone");
      return 2;
    }
    flower_node.superlink = node_cmd.superlink;
    flower_node.node_config = node_cmd.node_config;
    flower_node.root_certificates = ca;
    if (supernode->get_option("--max-backoff")->count() > 0) flower_node.max_backoff_s = node_cmd.backoff_max_s;
    if (node_cmd.nodes != 1) {
      log.error("supernode: --protocol flower serves one node per process (no --nodes)");
      return 2;
    }
    return run_flower_supernode(flower_node, log);
  }
  for (const char* flag : {"--app", "--insecure", "--auth-supernode-private-key", "--heartbeat-interval",
                           "--poll-interval", "--max-wait-time"})
    if (supernode->get_option(flag)->count() > 0) {
      log.error(std::string("supernode: ") + flag + " is for --protocol flower");
      return 2;
    }
  if (ca.empty() != cert.empty() || ca.empty() != key.empty()) {
    log.error("supernode: mutual TLS needs all three of --root-certificates, --certificate and --private-key");
    return 2;
  }
  node_cmd.link = link;
  if ((!superlink_name.empty() || !superlink_key.empty()) && !link.tls) {
    log.error("supernode: --superlink-name and --superlink-key need TLS (--root-certificates, "
              "--certificate, --private-key)");
    return 2;
  }
  node_cmd.link.superlink_name = superlink_name;
  if (!trusted.empty() && !link.tls) {
    log.error("supernode: --trust-submitter needs TLS (--root-certificates, --certificate, --private-key)");
    return 2;
  }
  if (!resolve_key_list(trusted, node_cmd.trusted_submitters, "supernode: --trust-submitter", log)) return 2;
  if (!superlink_key.empty()) {
    std::vector<std::string> pinned;
    if (!resolve_key_list({superlink_key}, pinned, "supernode: --superlink-key", log)) return 2;
    node_cmd.link.superlink_key = pinned.front();
  }
  return exit_code(run_supernode(node_cmd, log));
}
