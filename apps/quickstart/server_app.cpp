// The quickstart's ServerApp (Flower's server_app.py) and the app's entry point.
#include <filesystem>

#include "apps/quickstart/quickstart.hpp"

#include "runtime/app_components.hpp"
#include "runtime/logger.hpp"

namespace quickstart {

using namespace stamen;

server_app make_server_app() {
  server_app app;
  app.main([](grid& g, context& ctx) {
    auto& rc = ctx.run_config;
    logger log;
    auto strategy = make_strategy(rc);

    // The initial model is drawn from the run's seed: same seed, same run.
    model global{shape_of(config_string(rc, "dataset")), static_cast<uint64_t>(config_int(rc, "seed"))};
    auto result = strategy->start(g, global.arrays(),
                                 static_cast<int>(config_int(rc, "num-server-rounds")),
                                 rc.contains("round-timeout") ? config_double(rc, "round-timeout") : 3600.0,
                                 config_record{{"lr", config_double(rc, "lr")}});

    log.info("Saving final model to disk...");
    std::filesystem::path path = rc.contains("final-model") ? config_string(rc, "final-model") : "final_model.pt";
    // On a superlink a relative path lands in the run's directory (what
    // `stamen pull` copies); in a simulation, in the current one.
    if (path.is_relative() && !ctx.run_dir.empty()) path = std::filesystem::path{ctx.run_dir} / path;
    if (auto ok = save_state_dict(result.arrays, path.string()); !ok) throw run_error(ok.error().what);
  });
  return app;
}

namespace {

void components(app_components& out) {
  auto store = std::make_shared<data_store>();
  out.server = make_server_app();
  out.make_client = [store](const context& ctx) { return make_client_app(ctx, store); };
  out.on_compute_thread_start = use_one_thread;
  out.check_run_config = check_strategy_config;
}

}  // namespace

}  // namespace quickstart

STAMEN_APP(quickstart::components)
