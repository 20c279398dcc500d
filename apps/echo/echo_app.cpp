// The echo app: a ServerApp that sends a model of a chosen size to nodes and
// checks that it comes back bit for bit, and a ClientApp that sends back what
// it got. No compute: what it measures is the runtime moving bytes between
// processes (bench/transfer_throughput runs it against raw TCP).
#include <chrono>
#include <cstring>

#include "runtime/app_components.hpp"
#include "runtime/logger.hpp"
#include "runtime/run_events.hpp"
#include "runtime/strategy/strategy.hpp"

namespace echo {

using namespace stamen;

namespace {

// A pattern that differs in every word, so a dropped, duplicated or shifted
// piece of the model cannot compare equal.
array make_model(size_t bytes) {
  auto [buf, raw] = buffer::allocate(bytes);
  auto* words = reinterpret_cast<uint32_t*>(raw);
  for (size_t i = 0; i < bytes / 4; ++i) words[i] = static_cast<uint32_t>(i * 2654435761u + 12345);
  return *array::make(dtype::float32, {static_cast<int64_t>(bytes / 4)}, std::move(buf));
}

server_app make_server_app() {
  server_app app;
  app.main([](grid& g, context& ctx) {
    auto& rc = ctx.run_config;
    logger log;
    auto size_mb = config_int(rc, "size-mb");
    auto repeats = config_int(rc, "repeats");
    auto nodes = static_cast<size_t>(config_int(rc, "nodes"));
    auto timeout = config_double(rc, "timeout");
    if (size_mb <= 0 || repeats <= 0 || nodes == 0)
      throw run_error("size-mb, repeats and nodes must be positive");
    if (g.wait_for_nodes(nodes, timeout) < nodes)
      throw run_error("fewer than " + std::to_string(nodes) + " nodes connected after " +
                      std::to_string(timeout) + "s");
    auto ids = g.node_ids();
    ids.resize(nodes);
    const size_t bytes = static_cast<size_t>(size_mb) << 20;
    log.info("echo: building a " + std::to_string(size_mb) + " MiB model");
    array_record model{{"w", make_model(bytes)}};
    strategy_result result;
    result.arrays = model;
    auto start = std::chrono::steady_clock::now();
    for (int64_t r = 1; r <= repeats; ++r) {
      std::vector<message> out;
      for (auto id : ids) {
        record_dict content;
        content.insert_or_assign("arrays", model);
        auto m = g.create_message(std::move(content), "query", id, std::to_string(r), timeout);
        if (!m) throw run_error(m.error().what);
        out.push_back(std::move(*m));
      }
      auto t0 = std::chrono::steady_clock::now();
      auto replies = g.send_and_receive(std::move(out), timeout);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      size_t intact = 0;
      for (auto& m : replies) {
        if (!m.has_content()) {
          log.warn("echo: node " + std::to_string(m.meta().src_node_id) +
                   " failed: " + m.error().reason);
          continue;
        }
        auto* back = m.content().arrays("arrays");
        if (back != nullptr && *back == model) ++intact;
        else log.error("echo: the model from node " + std::to_string(m.meta().src_node_id) +
                       " differs from the one sent");
      }
      // Each node's copy crossed twice: there and back.
      double gbps = 2.0 * static_cast<double>(bytes) * static_cast<double>(ids.size()) / s / 1e9;
      log.info("echo round " + std::to_string(r) + ": " + std::to_string(intact) + "/" +
               std::to_string(ids.size()) + " intact, " + std::to_string(s) + " s, " +
               std::to_string(gbps) + " GB/s");
      phase_report report;
      report.round = static_cast<int>(r);
      report.sampled = ids.size();
      report.results = intact;
      report.failures = replies.size() - intact;
      report.seconds = s;
      result.evaluate_rounds.push_back(std::move(report));
      result.evaluate_metrics_serverapp[static_cast<int>(r)] =
          metric_record{{"seconds", s}, {"gbps", gbps}, {"intact", static_cast<int64_t>(intact)},
                        {"bytes", static_cast<int64_t>(bytes)}};
      if (intact != ids.size())
        throw run_error("echo round " + std::to_string(r) + ": " +
                        std::to_string(ids.size() - intact) + " model(s) did not come back intact");
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // No strategy ran: the app reports its own result to whoever observes the run.
    current_run_observer().on_finished(result);
  });
  return app;
}

void components(app_components& out) {
  out.server = make_server_app();
  out.make_client = [](const context&) {
    auto app = std::make_shared<client_app>();
    app->query([](const message& m, context&) { return make_reply(m, m.content()); });
    return std::shared_ptr<const client_app>{app};
  };
}

}  // namespace

}  // namespace echo

STAMEN_APP(echo::components)
