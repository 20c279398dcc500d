// The ServerApp: FedAvg over the run config's rounds; and the app's entry point.
#include "runtime/app_components.hpp"
#include "runtime/strategy/fed_avg.hpp"

#include "task.hpp"

namespace @NAME@ {

using namespace stamen;

std::shared_ptr<const client_app> make_client_app(const context& node);

namespace {

void components(app_components& out) {
  out.server.main([](grid& g, context& ctx) {
    fed_avg_options o;
    o.fraction_train = config_double(ctx.run_config, "fraction-train");
    o.seed = static_cast<uint64_t>(config_int(ctx.run_config, "seed"));
    fed_avg strategy(o);
    strategy.start(g, initial_model(), static_cast<int>(config_int(ctx.run_config, "num-server-rounds")));
  });
  out.make_client = make_client_app;
}

}  // namespace

}  // namespace @NAME@

STAMEN_APP(@NAME@::components)
