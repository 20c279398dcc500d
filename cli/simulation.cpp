#include "cli/simulation.hpp"

#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "actors/federation.hpp"

namespace stamen {

namespace {

// Adds a SuperNode per id, each with the ClientApp the app builds for it,
// then runs the ServerApp; the federation ends (its pool with it) on return.
expected<std::optional<strategy_result>> run_on(caf::actor_system& sys,
                                                const federation_options& opts,
                                                const app_components& app,
                                                const config_record& run_config,
                                                const std::vector<uint64_t>& ids,
                                                run_observer& events, run_stop* stop,
                                                const std::string& app_dir, checkpoint_store* checkpoints) {
  federation f{sys, opts};
  for (size_t i = 0; i < ids.size(); ++i) {
    context ctx;
    ctx.node_id = ids[i];
    ctx.run_config = run_config;
    ctx.app_dir = app_dir;
    ctx.node_config = {{"partition-id", static_cast<int64_t>(i)},
                       {"num-partitions", static_cast<int64_t>(ids.size())}};
    std::shared_ptr<const client_app> client;
    try {
      client = app.make_client(ctx);
    } catch (const std::exception& e) {
      return fail(errc::runtime_error, "building the ClientApp of node " + std::to_string(i) +
                                           " failed: " + e.what());
    }
    f.add_node(ids[i], std::move(client), std::move(ctx));
  }
  // Every node of a simulation has registered before the ServerApp starts:
  // round 1 then samples from all of them, and the same seed samples the
  // same nodes however loaded the machine is (with a fault plan a node
  // registers through its fault stage, a step later).
  f.wait_for_nodes(ids.size(), 60);
  context server_ctx;
  server_ctx.run_id = std::random_device{}() | 1;
  server_ctx.node_id = server_node_id;
  server_ctx.run_config = run_config;
  server_ctx.app_dir = app_dir;
  return f.run(app.server, std::move(server_ctx), &events, stop, checkpoints);
}

}  // namespace

expected<std::optional<strategy_result>> run_simulation(const app_components& app,
                                                        const config_record& run_config,
                                                        const federation_config& fed,
                                                        const logger& log, run_observer& events,
                                                        run_stop* stop, const fault_plan& faults,
                                                        std::vector<fault_event>* injected,
                                                        const std::string& app_dir,
                                                        checkpoint_store* checkpoints) {
  if (fed.address)
    return fail(errc::config_error, "federation '" + fed.name + "' names a superlink (" +
                                        *fed.address +
                                        "); this build runs simulation federations only");
  size_t cores = std::max(1u, std::thread::hardware_concurrency());
  // Leaked on purpose when a compute thread was abandoned (a ClientApp that
  // never returned): that thread may still reach its actors, so their system
  // must outlive it; the process then ends without static destructors.
  auto rt = std::make_unique<actor_runtime>();
  federation_options opts;
  opts.compute_threads = fed.compute_threads == 0 ? cores : fed.compute_threads;
  opts.on_compute_thread_start = app.on_compute_thread_start;
  opts.make_client = app.make_client;  // a restarted node builds its ClientApp anew
  opts.log = log;

  // Node ids are random 63-bit numbers as in Flower, drawn from the seed so
  // that runs repeat.
  std::mt19937_64 rng{fed.seed};
  std::unordered_set<uint64_t> taken{0, server_node_id};
  std::vector<uint64_t> ids;
  std::unordered_map<uint64_t, int64_t> index_of;
  for (size_t i = 0; i < fed.num_supernodes; ++i) {
    uint64_t id;
    do id = rng() >> 1;
    while (!taken.insert(id).second);
    ids.push_back(id);
    index_of.emplace(id, static_cast<int64_t>(i));
  }
  if (!faults.empty())
    opts.faults = std::make_shared<fault_injector>(faults, index_of, fed.num_supernodes);
  auto result = run_on(*rt->sys, opts, app, run_config, ids, events, stop, app_dir, checkpoints);
  if (opts.faults && injected) *injected = opts.faults->events();
  if (compute_pool::abandoned() > 0) (void)rt.release();
  return result;
}

}  // namespace stamen
