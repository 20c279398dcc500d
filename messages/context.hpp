#pragma once

#include <cstdint>
#include <string>

#include "messages/config_record.hpp"
#include "messages/record_dict.hpp"

namespace stamen {

/// Flower's Context: what a ClientApp (or ServerApp) knows about where it runs.
/// `state` persists on the node across rounds and never leaves it.
struct context {
  uint64_t run_id = 0;  ///< Flower's `context.run_id`: the run the app serves
  /// Flower's `context.node_id`: the node the app runs on (`server_node_id` for a ServerApp).
  uint64_t node_id = 0;
  config_record node_config;  ///< simulation sets partition-id and num-partitions
  config_record run_config;   ///< the app's [app.config] after overrides
  record_dict state;          ///< Flower's `context.state`: the node's memory between rounds
  /// Where the app's files are: its directory in a simulation, the unpacked
  /// bundle (stamen.toml, the library, [app] files) on a cluster.
  std::string app_dir;
  /// A ServerApp's directory for what it writes (a superlink's per-run
  /// directory, which `stamen pull` copies); empty: the current directory.
  std::string run_dir;
};

}  // namespace stamen
