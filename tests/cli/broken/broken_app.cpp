// An app whose library needs a shared library that cannot be found: what a
// node sees when a bundle was built against something it lacks. Loading it
// fails with the dynamic loader's reason; nothing of it ever runs.
#include "runtime/app_components.hpp"

int stamen_test_missing_answer();

namespace broken {

void components(stamen::app_components& out) {
  out.server.main([](stamen::grid&, stamen::context&) { (void)stamen_test_missing_answer(); });
  out.make_client = [](const stamen::context&) -> std::shared_ptr<const stamen::client_app> { return nullptr; };
}

}  // namespace broken

STAMEN_APP(broken::components)
