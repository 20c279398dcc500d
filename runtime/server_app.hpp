#pragma once

#include <functional>
#include <optional>
#include <stdexcept>

#include "messages/context.hpp"
#include "messages/expected.hpp"
#include "runtime/grid.hpp"
#include "runtime/run_events.hpp"
#include "runtime/strategy/strategy_result.hpp"

namespace stamen {

class checkpoint_store;

/// Flower's ServerApp: the user's `main(grid, context)`.
class server_app {
 public:
  /// The app's main: drives the run on the grid; an exception from it fails the run.
  using main_fn = std::function<void(grid&, context&)>;

  /// Registers `fn` as the main (Flower's `@app.main()`), replacing any
  /// earlier one; returns `*this`.
  server_app& main(main_fn fn) {
    main_ = std::move(fn);
    return *this;
  }

  /// Runs the registered main; throws std::logic_error if there is none.
  void run(grid& g, context& ctx) const {
    if (!main_) throw std::logic_error("ServerApp has no main function registered");
    main_(g, ctx);
  }

 private:
  main_fn main_;
};

/// Runs `app`'s main on the calling thread, reporting the run's events to
/// `events` (if given), checkpointing its strategy's rounds to `checkpoints`
/// (if given; a checkpoint there is resumed), and stopping it when `stop`
/// (if given) is requested:
/// the boundary where an exception from the app's code becomes a failure
/// naming it. Returns the result the app's strategy reported when it
/// finished, if any.
expected<std::optional<strategy_result>> run_server_app(const server_app& app, grid& g,
                                                         context& ctx,
                                                         run_observer* events = nullptr,
                                                         const run_stop* stop = nullptr,
                                                         checkpoint_store* checkpoints = nullptr);

}  // namespace stamen
