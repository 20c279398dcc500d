#pragma once

// `stamen supernode --protocol flower`: a Stamen SuperNode in a Flower
// federation. It speaks Flower 1.23's Fleet API over gRPC as
// `flower-supernode` does (register and activate, heartbeats, pull a message
// and its objects, GetRun, push the reply and its objects, deactivate and
// unregister on SIGTERM), and answers with the app's C++ ClientApp. The FAB
// is never executed; its hash is logged.

#include <atomic>
#include <string>

#include "runtime/logger.hpp"

namespace stamen {

struct flower_supernode_options {
  std::string superlink;          ///< Flower SuperLink's Fleet API, "host:port"
  std::string app_dir = "apps/quickstart";  ///< the Stamen app whose ClientApp answers
  std::string node_config;        ///< "partition-id=0 num-partitions=10"
  bool insecure = false;          ///< plaintext gRPC (Flower's --insecure)
  std::string root_certificates;  ///< PEM file of the CA (Flower's --root-certificates)
  /// The node's key (Flower's --auth-supernode-private-key: a PEM EC private
  /// key); empty: a fresh SECP384R1 key, as flower-supernode makes one.
  std::string private_key;
  double heartbeat_interval_s = 30;  ///< Flower's HEARTBEAT_DEFAULT_INTERVAL
  double poll_interval_s = 3;        ///< between PullMessages when there was nothing
  double max_backoff_s = 20;         ///< Flower's MAX_RETRY_DELAY
  /// Gives up reconnecting after this long (0: never), as --max-wait-time.
  double max_wait_s = 0;
};

/// Runs the node until `stop` is set (or SIGINT/SIGTERM when `stop` is null,
/// which installs the handlers); returns the process exit code.
int run_flower_supernode(const flower_supernode_options& opts, const logger& log,
                         std::atomic<bool>* stop = nullptr);

}  // namespace stamen
