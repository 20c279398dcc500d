#pragma once

#include <functional>
#include <stdexcept>

#include "messages/context.hpp"
#include "runtime/grid.hpp"

namespace stamen {

/// Flower's ServerApp: the user's `main(grid, context)`.
class server_app {
 public:
  using main_fn = std::function<void(grid&, context&)>;

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

}  // namespace stamen
