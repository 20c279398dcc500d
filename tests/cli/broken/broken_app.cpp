// An app whose library needs a shared library that only the superlink is
// given (the test puts it on the superlink's LD_LIBRARY_PATH): on the
// nodes it fails to load, as a bundle built against something a host lacks
// would. Its ServerApp runs a FedAvg round, so the nodes' failures reach
// the strategy.
#include "runtime/app_components.hpp"
#include "runtime/strategy/fed_avg.hpp"
#include "tests/support/arithmetic_app.hpp"

int stamen_test_missing_answer();

namespace broken {

void components(stamen::app_components& out) {
  out.server.main([](stamen::grid& g, stamen::context&) {
    (void)stamen_test_missing_answer();
    stamen::fed_avg_options opts;
    opts.min_available_timeout_s = 60;
    stamen::fed_avg{opts}.start(g, stamen::test::initial_arrays(), 1, 60);
  });
  out.make_client = [](const stamen::context& ctx) { return stamen::test::arithmetic_app(0); };
}

}  // namespace broken

STAMEN_APP(broken::components)
