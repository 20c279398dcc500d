#include "actors/federation.hpp"

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <thread>

#include "actors/fault_stage.hpp"
#include "actors/grid_actor.hpp"
#include "actors/in_process_grid.hpp"
#include "actors/supernode.hpp"

namespace stamen {

actor_runtime::actor_runtime(size_t threads,
                             const std::function<void(caf::actor_system_config&)>& prepare) {
  register_types(cfg);
  if (prepare) prepare(cfg);
  // One core is left to the ServerApp's blocking thread (and to the compute
  // pool): CAF's work-stealing workers spin while idle, and on 2 cores two of
  // them made a 10,000-node round 2.7x slower than one.
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency() - 1);
  cfg.set("scheduler.max-threads", threads);
  sys = std::make_unique<caf::actor_system>(cfg);
}

namespace {

bool restarts_nodes(const std::shared_ptr<fault_injector>& faults) {
  if (!faults) return false;
  for (auto& r : faults->plan().rules)
    if (r.action == fault_action::restart) return true;
  return false;
}

}  // namespace

federation::federation(caf::actor_system& sys, federation_options opts)
    : sys_(sys), opts_(std::move(opts)) {
  pool_ = std::make_unique<compute_pool>(opts_.compute_threads, opts_.on_compute_thread_start,
                                         opts_.stuck_grace);
  grid_ = sys_.spawn(grid_behavior, opts_.codec, opts_.log);
  if (restarts_nodes(opts_.faults))
    respawner_ = sys_.spawn([this]() -> respawner_actor::behavior_type {
      return {[this](restart_atom, uint64_t node_id) { respawn(node_id); }};
    });
}

federation::~federation() {
  if (respawner_) {
    // No respawn may run once the federation starts going.
    caf::scoped_actor self{sys_};
    self->monitor(respawner_);
    caf::anon_send_exit(respawner_, caf::exit_reason::user_shutdown);
    self->receive([](const caf::down_msg&) {});
  }
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [id, n] : nodes_) caf::anon_send_exit(n, caf::exit_reason::user_shutdown);
  }
  caf::anon_send_exit(grid_, caf::exit_reason::user_shutdown);
  // Jobs still queued on the pool are dropped with it; running ones finish,
  // each until its deadline plus the grace at most.
  pool_.reset();
}

supernode_actor federation::add_node(uint64_t node_id, std::shared_ptr<const client_app> app,
                                     context ctx) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (respawner_ && first_.count(node_id) == 0) first_.emplace(node_id, std::pair{app, ctx});
  supernode_config cfg;
  cfg.node_id = node_id;
  cfg.app = std::move(app);
  common_ = share_common(ctx, pool_.get(), opts_.codec, std::move(common_));
  cfg.common = common_;
  cfg.node_config = std::move(ctx.node_config);
  cfg.state = std::move(ctx.state);
  // With a fault plan, a fault stage stands between the node and the grid.
  node_uplink_actor uplink = grid_;
  if (opts_.faults) uplink = sys_.spawn(fault_stage, grid_, opts_.faults, opts_.codec, respawner_);
  auto node = sys_.spawn(supernode_behavior, std::move(cfg), uplink);
  nodes_[node_id] = node;
  return node;
}

void federation::respawn(uint64_t node_id) {
  std::shared_ptr<const client_app> app;
  context ctx;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = first_.find(node_id);
    if (i == first_.end()) return;
    app = i->second.first;
    ctx = i->second.second;
  }
  ctx.state = {};  // a restarted process remembers nothing
  if (opts_.make_client) {
    try {
      app = opts_.make_client(ctx);
    } catch (const std::exception& e) {
      opts_.log.error("federation: node " + std::to_string(node_id) +
                      " cannot come back: building its ClientApp failed: " + e.what());
      return;
    }
  }
  opts_.log.info("federation: node " + std::to_string(node_id) + " restarts");
  add_node(node_id, std::move(app), std::move(ctx));
}

void federation::kill_node(uint64_t node_id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = nodes_.find(node_id);
  if (i == nodes_.end()) return;
  caf::anon_send_exit(i->second, caf::exit_reason::kill);
  nodes_.erase(i);
}

size_t federation::wait_for_nodes(size_t n, double timeout_s) {
  caf::scoped_actor self{sys_};
  in_process_grid g{self.ptr(), grid_, 0, opts_.codec, opts_.log};
  return g.wait_for_nodes(n, timeout_s);
}

expected<std::optional<strategy_result>> federation::run(const server_app& app, context ctx,
                                                         run_observer* events, run_stop* stop,
                                                         checkpoint_store* checkpoints) {
  caf::scoped_actor self{sys_};
  in_process_grid g{self.ptr(), grid_, ctx.run_id, opts_.codec, opts_.log};
  if (stop) stop->set_interrupt([&g] { g.interrupt(); });
  auto result = run_server_app(app, g, ctx, events, stop, checkpoints);
  if (stop) stop->set_interrupt({});
  return result;
}

}  // namespace stamen
