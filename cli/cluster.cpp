#include "cli/cluster.hpp"

#include "actors/compute_pool.hpp"

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <nlohmann/json.hpp>

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "actors/federation.hpp"
#include "actors/node_link.hpp"
#include "actors/run_client.hpp"
#include "actors/superlink.hpp"
#include "actors/transport.hpp"
#include "cli/app_loader.hpp"
#include "cli/control_command.hpp"
#include "cli/report_command.hpp"
#include "cli/signals.hpp"

namespace stamen {

namespace {

namespace fs = std::filesystem;

// Apps are loaded once per library file (a bundle's, by its hash) and stay
// loaded: a run's actors and threads may still hold their code when the
// next run starts.
app_resolver make_resolver() {
  auto cache = std::make_shared<std::map<std::string, std::shared_ptr<const app_components>>>();
  auto mtx = std::make_shared<std::mutex>();
  return [cache, mtx](const std::string& library,
                      const fs::path& dir) -> expected<std::shared_ptr<const app_components>> {
    auto file = dir / ("lib" + library + ".so");
    std::lock_guard<std::mutex> guard{*mtx};
    if (auto i = cache->find(file.string()); i != cache->end()) return i->second;
    std::error_code ec;
    if (!fs::is_regular_file(file, ec))
      return fail(errc::io_error, "the app's bundle has no library lib" + library + ".so");
    auto app = load_app_file(file);
    if (!app) return app.error();
    auto owner = std::make_shared<loaded_app>(std::move(*app));
    std::shared_ptr<const app_components> out{owner, &owner->components};
    cache->emplace(file.string(), out);
    return out;
  };
}

// A directory of this process's own under the system's temporary one.
expected<fs::path> make_temporary_dir(const std::string& prefix) {
  auto pattern = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr)
    return fail(errc::io_error, "cannot create a temporary directory under " +
                                    fs::temp_directory_path().string());
  return fs::path{pattern};
}

// Where a supernode caches bundles unless told: the user's cache directory.
fs::path default_bundle_cache() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0')
    return fs::path{xdg} / "stamen" / "bundles";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return fs::path{home} / ".cache" / "stamen" / "bundles";
  return fs::temp_directory_path() / "stamen-bundles";
}

// Checks TLS files (if any) before anything starts; false after logging why.
bool tls_files_usable(const std::optional<tls_files>& tls, const std::string& who, const logger& log) {
  if (!tls) return true;
  auto ok = check_tls_files(*tls);
  if (!ok) log.error(who + ": refusing to start: " + ok.error().what);
  return static_cast<bool>(ok);
}

// Runs until `actor` ends or a stop signal arrives (which ends it).
bool wait_for(caf::actor_system& sys, const caf::actor& actor, sigset_t set) {
  on_stop_signal(set, [actor](int) { caf::anon_send_exit(actor, caf::exit_reason::user_shutdown); });
  caf::scoped_actor self{sys};
  self->monitor(actor);
  bool clean = true;
  self->receive([&](caf::down_msg& dm) {
    clean = !dm.reason || dm.reason == caf::exit_reason::user_shutdown;
  });
  return clean;
}

}  // namespace

int run_superlink(const superlink_command& cmd, const logger& log) {
  if (!tls_files_usable(cmd.link.tls, "superlink", log)) return 2;
  fs::path state_dir = cmd.state_dir;
  bool temporary = state_dir.empty();
  if (temporary) {
    auto tmp = make_temporary_dir("stamen-superlink-");
    if (!tmp) {
      log.error("superlink: " + tmp.error().what);
      return 1;
    }
    state_dir = *tmp;
    log.info("superlink: keeping state in the temporary directory " + state_dir.string() +
             ", removed on exit (--state-dir DIR keeps it)");
  }
  auto signals = block_stop_signals();
  actor_runtime rt{0, [&](caf::actor_system_config& cfg) { configure_links(cfg, cmd.link.tls); }};
  superlink_options opts;
  opts.state_dir = state_dir;
  opts.allowed_submitters = cmd.allowed_submitters;
  opts.admin_submitters = cmd.admin_submitters;
  opts.insecure_accept_bundles = cmd.insecure_accept_bundles;
  opts.max_link_nodes = cmd.max_link_nodes;
  opts.max_pending_peers = cmd.max_pending_peers;
  opts.handshake_timeout_s = cmd.handshake_timeout_s;
  opts.max_concurrent_runs = cmd.max_concurrent_runs;
  if (cmd.http_port >= 0)
    opts.http = http_options{cmd.http_address, static_cast<uint16_t>(cmd.http_port), cmd.link.tls};
  opts.port = cmd.port;
  opts.bind = cmd.bind;
  // Taking code from anyone is for one host: without an address given,
  // such a superlink listens on loopback only.
  if (cmd.insecure_accept_bundles && opts.bind.empty()) {
    opts.bind = "127.0.0.1";
    log.info("superlink: --insecure-accept-bundles: bound to 127.0.0.1 only (--bind ADDRESS to serve "
             "elsewhere)");
  }
  opts.link = cmd.link;
  opts.log = log;
  opts.resolve = make_resolver();
  auto link = start_superlink(*rt.sys, opts);
  if (!link) {
    log.error("superlink: " + link.error().what);
    return 1;
  }
  log.info("Starting Stamen SuperLink on port " + std::to_string(link->port) +
           (cmd.link.tls ? " (TLS, mutual authentication" +
                               std::string{cmd.link.allowed_nodes.empty() ? "" : ", node allow-list"} + ")"
                         : " (insecure: no TLS)"));
  if (link->http)
    log.info(std::string{"superlink: serving "} + (cmd.link.tls ? "https" : "http") + "://" + cmd.http_address +
             ":" + std::to_string(link->http->port()) + " (dashboard at /, /metrics, /api/runs, /api/runs/<id>, /api/nodes, /api/warnings)");
  if (cmd.insecure_accept_bundles)
    log.warn("superlink: --insecure-accept-bundles: anyone who can reach port " + std::to_string(link->port) +
             " can run code on this host and on every node");
  // Tests and scripts that ask for port 0 read the port from this line.
  std::cout << "listening on " << link->port << std::endl;
  auto clean = wait_for(*rt.sys, link->broker, signals);
  if (temporary) {
    std::error_code ec;
    fs::remove_all(state_dir, ec);
  }
  return clean ? 0 : 1;
}

int run_supernode(const supernode_command& cmd, const logger& log) {
  auto addr = parse_address(cmd.superlink, "--superlink");
  if (!addr) {
    log.error("supernode: " + addr.error().what);
    return 2;
  }
  auto node_config = parse_key_values(cmd.node_config);
  if (!node_config) {
    log.error("supernode: --node-config: " + node_config.error().what);
    return 2;
  }
  std::optional<int64_t> offset;
  if (cmd.partition_offset >= 0) offset = cmd.partition_offset;
  if (cmd.nodes > 1 && node_config->contains("partition-id")) {
    log.error("supernode: --node-config sets partition-id for all " + std::to_string(cmd.nodes) +
              " nodes; give the first one with --partition-offset instead");
    return 2;
  }
  if (offset && node_config->contains("partition-id")) {
    log.error("supernode: both --partition-offset and --node-config's partition-id say which partition to use");
    return 2;
  }
  if (cmd.nodes > 1 && !offset) offset = 0;
  if (auto parts = node_config->find("num-partitions"); offset && parts != node_config->end()) {
    auto* total = std::get_if<int64_t>(&parts->second);
    if (total != nullptr && *offset + static_cast<int64_t>(cmd.nodes) > *total) {
      log.error("supernode: partitions " + std::to_string(*offset) + ".." +
                std::to_string(*offset + cmd.nodes - 1) + " do not exist: num-partitions is " +
                std::to_string(*total));
      return 2;
    }
  }
  if (!tls_files_usable(cmd.link.tls, "supernode", log)) return 2;
  auto signals = block_stop_signals();
  // One scheduler thread: the nodes' trainings run on compute threads of their own.
  actor_runtime rt{1, [&](caf::actor_system_config& cfg) { configure_links(cfg, cmd.link.tls); }};
  node_link_options opts;
  opts.host = addr->first;
  opts.port = addr->second;
  opts.node_config = std::move(*node_config);
  opts.node_config_text = cmd.node_config;
  opts.nodes = cmd.nodes;
  opts.partition_offset = offset;
  // One node trains one thing at a time; many nodes of one process use the
  // machine's cores, as a simulation does (an app's per-thread setup keeps
  // each training to one core).
  opts.compute_threads = cmd.compute_threads > 0 ? cmd.compute_threads
                         : cmd.nodes > 1         ? std::max(1u, std::thread::hardware_concurrency())
                                                 : 1;
  if (offset)
    opts.node_config_text += (opts.node_config_text.empty() ? "" : ", ") +
                             (cmd.nodes > 1 ? "partitions " + std::to_string(*offset) + ".." +
                                                  std::to_string(*offset + cmd.nodes - 1)
                                            : "partition-id=" + std::to_string(*offset));
  opts.link = cmd.link;
  opts.backoff_max_s = cmd.backoff_max_s;
  opts.log = log;
  opts.resolve = make_resolver();
  opts.bundle_cache = fs::absolute(cmd.bundle_cache.empty() ? default_bundle_cache() : fs::path{cmd.bundle_cache});
  opts.accept_bundles = cmd.link.tls.has_value() || cmd.insecure_accept_bundles;
  opts.trusted_submitters = cmd.trusted_submitters;
  if (!cmd.link.tls && cmd.insecure_accept_bundles)
    log.warn("supernode: --insecure-accept-bundles: whoever answers at " + cmd.superlink +
             " can run code on this host");
  log.info("Starting Stamen SuperNode for superlink " + cmd.superlink +
           (cmd.nodes > 1 ? " hosting " + std::to_string(cmd.nodes) + " nodes" : "") +
           (opts.node_config_text.empty() ? "" : " with node config '" + opts.node_config_text + "'"));
  auto broker = start_node_link(*rt.sys, std::move(opts));
  int rc = wait_for(*rt.sys, broker, signals) ? 0 : 1;
  if (compute_pool::abandoned() > 0) {
    // A ClientApp never returned and its thread was abandoned: the actor
    // system's destructor would wait for it forever, and the static
    // destructors after it would unload the app from under it.
    log.warn("supernode: a ClientApp never returned; exiting without waiting for it");
    std::clog.flush();
    std::_Exit(rc);
  }
  return rc;
}

int run_on_cluster(const app_config& cfg, const config_record& run_config,
                   const federation_config& fed, const std::vector<fs::path>& search,
                   bool json, bool detach, const std::string& report_dir, bool live, const logger& log) {
  auto addr = parse_address(*fed.address, "federation '" + fed.name + "' address");
  if (!addr) {
    log.error(addr.error().what);
    return 2;
  }
  if (!tls_files_usable(fed.tls, "federation '" + fed.name + "'", log)) return 2;
  auto library = find_app_library(cfg.library, search);
  if (!library) {
    log.error(library.error().what);
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  auto bundle = pack_app_bundle(cfg, *library);
  if (!bundle) {
    log.error("cannot pack the app: " + bundle.error().what);
    return 2;
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  log.info("Packed app bundle " + short_hash(bundle->hash) + "... (" + std::to_string(bundle->bytes.size()) +
           " bytes, " + std::to_string(2 + cfg.files.size()) + " path(s)) from " + library->string() +
           " in " + format_seconds(took.count()));
  actor_runtime rt{1, [&](caf::actor_system_config& c) { configure_links(c, fed.tls); }};
  run_submission run;
  run.host = addr->first;
  run.port = addr->second;
  run.app = cfg.name;
  run.library = cfg.library;
  run.bundle = std::move(*bundle);
  run.detach = detach;
  run.run_config = run_config;
  auto link = submitter_link(fed);
  if (!link) {
    log.error(link.error().what);
    return 2;
  }
  run.link = std::move(*link);
  run.min_nodes = fed.num_supernodes_given ? fed.num_supernodes : 0;
  log.info("Submitting run of '" + cfg.name + "' to superlink " + *fed.address + (fed.tls ? " (TLS)" : "") +
           (run.min_nodes > 0 ? ", to start once " + std::to_string(run.min_nodes) + " nodes are connected" : ""));
  if (live) {
    // The superlink's live line for the run, under its log, as a
    // simulation draws its own.
    logger::set_status_stream(&std::clog);
    run.on_progress = [](const std::string& text) { logger::set_status(text); };
  }
  auto out = submit_run(
      *rt.sys, run,
      [&log](const std::string& line) {
        // The superlink's lines carry their level: --quiet keeps warnings
        // and errors of the run, as it does for a simulation.
        auto lv = line.rfind("DEBUG", 0) == 0 ? logger::level::debug
                  : line.rfind("INFO", 0) == 0 ? logger::level::info
                                               : logger::level::warning;
        if (log.shows(lv)) logger::print_line(std::clog, line);
      },
      [&](uint64_t id) {
        log.info("Run " + std::to_string(id) + " submitted (`stamen log " + std::to_string(id) +
                 " --follow`, `stamen stop " + std::to_string(id) + "`)");
      });
  if (live) logger::set_status_stream(nullptr);
  if (detach && out.ok) {
    std::cout << out.run_id << std::endl;
    return 0;
  }
  if (!out.ok) {
    // A run that failed or was stopped comes with its result so far (its
    // rounds and their failures) and the reason as "error"; a refusal or a
    // lost superlink with the reason only.
    auto doc = nlohmann::json::parse(out.text, nullptr, false);
    bool partial = doc.is_object() && doc.contains("error") && doc["error"].is_string();
    log.error(partial ? doc["error"].get<std::string>() : out.text);
    if (json)
      std::cout << (partial ? cluster_result_json(out.text, out.run_id) : nlohmann::json{{"error", out.text}}).dump(2)
                << std::endl;
    return 1;
  }
  auto doc = cluster_result_json(out.text, out.run_id);
  if (json) std::cout << doc.dump(2) << std::endl;
  if (!report_dir.empty()) {
    if (!doc.contains("rounds")) {
      log.error("report: run " + std::to_string(out.run_id) + "'s result is not a strategy's result");
      return 1;
    }
    auto ok = write_report({{cfg.name, doc}}, report_dir);
    if (!ok) {
      log.error("report: " + ok.error().what);
      return 1;
    }
    log.info("Report written to " + (fs::path{report_dir} / "report.html").string());
  }
  return 0;
}

}  // namespace stamen
