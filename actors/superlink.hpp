#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/http_service.hpp"
#include "actors/interfaces.hpp"
#include "actors/link_options.hpp"
#include "messages/codec.hpp"
#include "runtime/app_components.hpp"
#include "runtime/logger.hpp"

namespace stamen {

/// Loads an app's components from lib<library>.so in `dir` (an unpacked
/// bundle); what it returns keeps the library loaded.
using app_resolver = std::function<expected<std::shared_ptr<const app_components>>(
    const std::string& library, const std::filesystem::path& dir)>;

struct superlink_options {
  uint16_t port = 9092;    ///< 0: any free port (see superlink_handle::port)
  std::string bind;        ///< address to listen on; empty: all
  link_options link;       ///< heartbeat, timeout, frame limits, TLS
  codec_options codec;
  logger log;
  app_resolver resolve;    ///< loads a submitted run's ServerApp from its bundle
  /// Where the superlink keeps its state: `state.db` (runs, logs, metrics,
  /// nodes), bundles (`bundles/<hash>`) and each run's directory
  /// (`runs/<id>/`, where its ServerApp's relative paths land).
  std::filesystem::path state_dir;
  /// Runs whose ServerApps run at once; later ones wait, pending.
  size_t max_concurrent_runs = 1;
  /// SHA-256 fingerprints of the submitter keys allowed to ship bundles
  /// (needs TLS: a submitter proves its key as a node does).
  std::vector<std::string> allowed_submitters;
  /// SHA-256 fingerprints of keys that may control every run (stop, log,
  /// pull, result) and submit like an allowed submitter; any other
  /// submitter controls its own runs only.
  std::vector<std::string> admin_submitters;
  /// Accept bundles from anyone who can connect: remote code execution for
  /// whoever reaches the port. For a trusted network or a test only.
  bool insecure_accept_bundles = false;
  /// Most SuperNodes one link may host: a hello claiming more is refused
  /// before anything is done for them.
  uint32_t max_link_nodes = 1 << 17;
  /// Connections that have not yet said who they are (no hello, submit or
  /// control): more are closed as they come.
  size_t max_pending_peers = 256;
  /// Seconds a connection may take to say who it is, pings or not.
  double handshake_timeout_s = 10;
  /// Most bytes `stamen pull` copies of one run (its files are skipped past it).
  uint64_t max_pull_bytes = uint64_t{4} << 30;
  /// Set: serve /metrics (Prometheus) and /api/... over HTTP (HTTPS with
  /// the link's TLS files).
  std::optional<http_options> http;
};

struct superlink_handle {
  caf::actor broker;  ///< owns the port and every connection
  grid_actor grid;
  uint16_t port = 0;
  std::shared_ptr<http_service> http;  ///< while it lives, the HTTP side serves
};

/// Starts a superlink in `sys` (which must have loaded CAF's middleman): a
/// grid actor and the broker that serves it on `opts.port`. SuperNodes
/// connect, authenticate and register through the broker; each registered
/// node is a local actor to the grid, so the grid, the strategy and the
/// ServerApp run unchanged. `stamen run` submits runs to the same port with
/// the app's bundle, which is stored here once per hash (from an allowed
/// submitter only) and fetched by each node that lacks it; the ServerApp
/// then runs here and its log and result go back to the submitter.
/// Runs are kept in `opts.state_dir`'s database: a restarted superlink lists
/// every earlier run and starts the ones still pending. `stamen ls`, `log`,
/// `stop` and `pull` talk to the same port. Fails (with the reason) when
/// the port cannot be opened, the TLS files cannot be loaded or the state
/// database is unreadable or from a newer version.
expected<superlink_handle> start_superlink(caf::actor_system& sys, superlink_options opts);

}  // namespace stamen
