#include "runtime/server_app.hpp"

#include <memory>

#include "runtime/checkpoint.hpp"

namespace stamen {

expected<std::optional<strategy_result>> run_server_app(const server_app& app, grid& g,
                                                         context& ctx, run_observer* events,
                                                         const run_stop* stop,
                                                         checkpoint_store* checkpoints) {
  run_events all;
  if (events) all.add(*events);
  auto capture = std::make_shared<result_capture>();
  all.add(capture);
  run_scope scope{all, stop};
  checkpoint_scope saving{checkpoints};
  try {
    app.run(g, ctx);
  } catch (const std::exception& e) {
    return fail(errc::runtime_error, std::string{"ServerApp failed: "} + e.what());
  }
  return capture->result();
}

}  // namespace stamen
