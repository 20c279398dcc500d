#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/compute_pool.hpp"
#include "actors/interfaces.hpp"
#include "messages/codec.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/client_app.hpp"
#include "runtime/fault/fault_plan.hpp"
#include "runtime/logger.hpp"
#include "runtime/run_events.hpp"
#include "runtime/server_app.hpp"
#include "runtime/strategy/strategy_result.hpp"

namespace stamen {

struct node_common;  // supernode.hpp

/// A CAF config with Stamen's types registered and the scheduler capped at
/// `threads` (0: one per core but one), so node actors cannot oversubscribe
/// the cores.
struct actor_runtime {
  /// `prepare` edits the config before the system starts (e.g. to load the
  /// middleman for cluster links).
  explicit actor_runtime(size_t threads = 0,
                         const std::function<void(caf::actor_system_config&)>& prepare = {});
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
};

struct federation_options {
  /// Threads that run ClientApps (trainings at once); 0 runs them inline in
  /// the node actors (for apps that do no real compute).
  size_t compute_threads = 0;
  /// Runs once on each compute thread (e.g. to cap torch's intra-op threads).
  std::function<void()> on_compute_thread_start;
  /// How long past its instruction's deadline a ClientApp may run before its
  /// thread is abandoned and replaced (see compute_pool).
  std::chrono::milliseconds stuck_grace = std::chrono::seconds(2);
  codec_options codec;
  logger log;
  /// Faults to inject between the grid and the nodes (null: none).
  std::shared_ptr<fault_injector> faults;
  /// Builds a node's ClientApp anew when a fault plan restarts the node, as
  /// a restarted process would; unset: its first ClientApp is used again.
  std::function<std::shared_ptr<const client_app>(const context&)> make_client;
};

/// A grid actor and its SuperNode actors in one actor system: what the
/// simulation runs, and what tests drive directly.
class federation {
 public:
  federation(caf::actor_system& sys, federation_options opts = {});
  ~federation();

  federation(const federation&) = delete;
  federation& operator=(const federation&) = delete;

  /// Spawns a SuperNode actor that registers with the grid under `node_id`.
  supernode_actor add_node(uint64_t node_id, std::shared_ptr<const client_app> app,
                           context ctx = {});

  /// Kills a node's actor, as a crash would.
  void kill_node(uint64_t node_id);

  /// Brings back a node that a fault plan restarted: the same id, node and
  /// run config, a fresh Context state and (with make_client) a fresh ClientApp.
  void respawn(uint64_t node_id);

  /// Blocks until the grid has `n` nodes (or the timeout passed); returns the count.
  size_t wait_for_nodes(size_t n, double timeout_s = 10);

  grid_actor grid_handle() const { return grid_; }

  /// Runs the ServerApp's main on the calling thread, which becomes a blocking
  /// actor talking to the grid, with the run's events going to `events` (if
  /// given); a request on `stop` (from any thread) ends the run after the
  /// phase in flight, which it cuts short. Exceptions from main end here as a
  /// failure. Its strategy checkpoints to (and resumes from) `checkpoints`,
  /// if given. Returns what its strategy reported at the end, if anything.
  expected<std::optional<strategy_result>> run(const server_app& app, context ctx,
                                               run_observer* events = nullptr,
                                               run_stop* stop = nullptr,
                                               checkpoint_store* checkpoints = nullptr);

 private:
  caf::actor_system& sys_;
  federation_options opts_;
  std::unique_ptr<compute_pool> pool_;
  grid_actor grid_;
  respawner_actor respawner_;  ///< only with a fault plan that restarts nodes
  std::mutex mtx_;             ///< nodes_ and first_: respawns come from an actor
  std::unordered_map<uint64_t, supernode_actor> nodes_;
  std::shared_ptr<const node_common> common_;  ///< the last node's, shared with the next
  /// What each node started with, kept only when nodes may be restarted.
  std::unordered_map<uint64_t, std::pair<std::shared_ptr<const client_app>, context>> first_;
};

}  // namespace stamen
