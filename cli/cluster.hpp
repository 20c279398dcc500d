#pragma once

// The cluster commands: `stamen superlink`, `stamen supernode`, and `stamen
// run` on a federation that names a superlink. Each blocks until it is done
// (the first two until SIGINT or SIGTERM) and returns a process exit code.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "actors/link_options.hpp"
#include "config/app_config.hpp"
#include "runtime/logger.hpp"

namespace stamen {

struct superlink_command {
  uint16_t port = 9092;
  std::string bind;
  link_options link;
  /// Where bundles (and later runs) are kept; empty: a temporary directory,
  /// removed when the superlink exits.
  std::string state_dir;
  std::vector<std::string> allowed_submitters;  ///< key fingerprints
  std::vector<std::string> admin_submitters;    ///< key fingerprints
  bool insecure_accept_bundles = false;
  uint32_t max_link_nodes = 1 << 17;
  size_t max_pending_peers = 256;
  double handshake_timeout_s = 10;
  size_t max_concurrent_runs = 1;
  int http_port = -1;  ///< -1: no HTTP side; 0: any free port
  std::string http_address = "127.0.0.1";
};
int run_superlink(const superlink_command& cmd, const logger& log);

struct supernode_command {
  std::string superlink;    ///< "host:port"
  std::string node_config;  ///< "k=v k=v"
  uint32_t nodes = 1;
  int64_t partition_offset = -1;  ///< -1: not given
  size_t compute_threads = 0;  ///< 0: one for a single node, one per core for --nodes > 1
  link_options link;
  double backoff_max_s = 8;
  /// Where bundles are cached; empty: $XDG_CACHE_HOME/stamen/bundles (or
  /// ~/.cache/stamen/bundles).
  std::string bundle_cache;
  bool insecure_accept_bundles = false;
  std::vector<std::string> trusted_submitters;  ///< key fingerprints
};
int run_supernode(const supernode_command& cmd, const logger& log);

/// Packs `cfg`'s app into a bundle (its library found in `search`), submits
/// it with `run_config` to the superlink of `fed` and logs the run's id as
/// soon as the superlink gives it. Then, unless `detach` (which prints the
/// id on stdout and returns), prints the run's log to stderr and, with
/// `json`, its result to stdout; with `report_dir`, writes its report there.
/// With `live` (stderr a terminal), draws the run's status line under its log.
int run_on_cluster(const app_config& cfg, const config_record& run_config,
                   const federation_config& fed, const std::vector<std::filesystem::path>& search,
                   bool json, bool detach, const std::string& report_dir, bool live, const logger& log);

}  // namespace stamen
