#include "cli/simulation.hpp"

#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "actors/federation.hpp"
#include "runtime/flower_log.hpp"

namespace stamen {

expected<std::optional<strategy_result>> run_simulation(const app_components& app,
                                                        const config_record& run_config,
                                                        const federation_config& fed,
                                                        const logger& log,
                                                        const fault_plan& faults,
                                                        std::vector<fault_event>* injected) {
  if (fed.address)
    return fail(errc::config_error, "federation '" + fed.name + "' names a superlink (" +
                                        *fed.address +
                                        "); this build runs simulation federations only");
  size_t cores = std::max(1u, std::thread::hardware_concurrency());
  actor_runtime rt;
  federation_options opts;
  opts.compute_threads = fed.compute_threads == 0 ? cores : fed.compute_threads;
  opts.on_compute_thread_start = app.on_compute_thread_start;
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
  federation f{*rt.sys, opts};
  for (size_t i = 0; i < fed.num_supernodes; ++i) {
    auto id = ids[i];
    context ctx;
    ctx.node_id = id;
    ctx.run_config = run_config;
    ctx.node_config = {{"partition-id", static_cast<int64_t>(i)},
                       {"num-partitions", static_cast<int64_t>(fed.num_supernodes)}};
    std::shared_ptr<const client_app> client;
    try {
      client = app.make_client(ctx);
    } catch (const std::exception& e) {
      return fail(errc::runtime_error, "building the ClientApp of node " + std::to_string(i) +
                                           " failed: " + e.what());
    }
    f.add_node(id, std::move(client), std::move(ctx));
  }
  context server_ctx;
  server_ctx.run_id = std::random_device{}() | 1;
  server_ctx.node_id = server_node_id;
  server_ctx.run_config = run_config;
  flower_log shown{log};
  auto result = f.run(app.server, std::move(server_ctx), &shown);
  if (opts.faults && injected) *injected = opts.faults->events();
  return result;
}

}  // namespace stamen
