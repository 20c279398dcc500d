// The gated app: the tests' arithmetic app (node p, its partition-id, answers
// train with the global arrays plus p + 1, weighted p + 1, so the FedAvg
// result is known exactly). With `gate-file` set, train first logs that it
// waits and then waits until that file exists: the test acts on a node it
// knows to be mid-round. With `secure-aggregation = "secaggplus"` training
// runs SecAgg+, and the gate sits inside the node's secaggplus_mod: a node
// held there has shared its keys (collect-masked-vectors).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "runtime/app_components.hpp"
#include "runtime/logger.hpp"
#include "runtime/secagg/secagg_params.hpp"
#include "runtime/secagg/secagg_plus_mod.hpp"
#include "runtime/secagg/secagg_plus_workflow.hpp"
#include "runtime/strategy/fed_avg.hpp"
#include "tests/support/arithmetic_app.hpp"

namespace gated {

using namespace stamen;

namespace {

void wait_at_gate(const config_record& rc, int64_t p, int64_t round) {
  auto file = config_string(rc, "gate-file");
  auto only = config_int(rc, "gate-round");
  if (file.empty() || std::filesystem::exists(file) || (only != 0 && only != round)) return;
  logger{}.info("gated: node " + std::to_string(p) + " waiting at the gate");
  while (!std::filesystem::exists(file)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// The arithmetic app, with its train held at the gate.
std::shared_ptr<const client_app> make_client(const context& node) {
  auto p = config_int(node.node_config, "partition-id");
  auto inner = stamen::test::arithmetic_app(p);
  std::vector<mod> mods;
  // SecAgg+ outermost, so that the gate below sees only the stage that trains.
  if (config_string(node.run_config, "secure-aggregation") == "secaggplus") mods.push_back(secaggplus_mod);
  mods.push_back(
      [p](const message& m, context& ctx, const handler& next) {
        // An instruction whose config carries `raise` makes the handler throw it.
        if (auto* config = m.has_content() ? m.content().configs("config") : nullptr; config && config->contains("raise"))
          throw std::runtime_error(config_string(*config, "raise"));
        if (m.meta().message_type == "train")
          wait_at_gate(ctx.run_config, p, config_int(*m.content().configs("config"), "server-round"));
        return next(m, ctx);
      });
  auto app = std::make_shared<client_app>(std::move(mods));
  auto forward = [inner](const message& m, context& ctx) { return inner->handle(m, ctx); };
  // Train also reports step = p + 1, weighted by p + 1 like its update: the
  // round's aggregated step is then exactly what FedAvg added to every w[k]
  // (sum (p+1)^2 / sum (p+1)), so that a checker can tell a run's final
  // arrays from its per-round metrics alone (tests/nemesis).
  app->train([inner, p](const message& m, context& ctx) {
    auto reply = inner->handle(m, ctx);
    if (reply.has_content())
      if (auto* metrics = reply.content().get_as<metric_record>("metrics"))
        metrics->insert_or_assign("step", static_cast<double>(p + 1));
    return reply;
  });
  app->evaluate(forward);
  return app;
}

void components(app_components& out) {
  out.server.main([](grid& g, context& ctx) {
    auto& rc = ctx.run_config;
    // What a broken ServerApp may do: throw something that is no
    // std::exception (it must cost its run only).
    if (config_int(rc, "server-throws") != 0) throw 42;
    fed_avg_options opts;
    opts.seed = 1;
    opts.min_available_timeout_s = config_double(rc, "round-timeout");
    opts.min_available_nodes = static_cast<size_t>(config_int(rc, "min-nodes"));
    fed_avg strategy{opts};
    if (config_string(rc, "secure-aggregation") == "secaggplus") {
      auto secure = secagg::options_from_config(rc);
      if (!secure) throw std::invalid_argument(secure.error().what);
      strategy.set_train_workflow(std::make_shared<secagg_plus_workflow>(*secure));
    }
    // w = {0, 1, 2, ...}: the tests' three floats, or a benchmark's model size.
    std::vector<float> w0(static_cast<size_t>(config_int(rc, "model-floats")));
    for (size_t i = 0; i < w0.size(); ++i) w0[i] = static_cast<float>(i);
    array_record initial{{"w", array::from_values(dtype::float32, {static_cast<int64_t>(w0.size())}, w0)}};
    auto result = strategy.start(g, initial,
                                 static_cast<int>(config_int(rc, "num-server-rounds")),
                                 config_double(rc, "round-timeout"));
    // The final arrays as text, in the run's directory on a superlink (what
    // `stamen pull` brings back), and whether that is also this thread's
    // working directory (where a relative path would land).
    namespace fs = std::filesystem;
    fs::path dir = ctx.run_dir.empty() ? fs::current_path() : fs::path{ctx.run_dir};
    std::error_code ec;
    std::ofstream{dir / "cwd_is_run_dir.txt"} << (fs::equivalent(fs::current_path(), dir, ec) ? "yes" : "no");
    const array* final_w = result.arrays.get("w");
    auto w = final_w != nullptr ? final_w->to_vector<float>() : std::vector<float>{};
    std::ofstream out(dir / "final_arrays.txt");
    for (auto x : w) out << x << '\n';
    // And leave a link out of its directory (which `stamen pull` must not follow).
    if (config_int(rc, "plant-symlink") != 0) fs::create_symlink("/etc/hostname", dir / "outside", ec);
  });
  out.make_client = make_client;
}

}  // namespace

}  // namespace gated

STAMEN_APP(gated::components)
