// In-process failure detection: time from killing a SuperNode actor to the
// grid no longer listing it (the grid learns of it by a CAF down message).
// Cross-process detection is bench_failure_detection_cluster.
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/federation.hpp"
#include "actors/in_process_grid.hpp"
#include "bench/bench_util.hpp"

using namespace stamen;

int main() {
  actor_runtime rt{0};  // the runtime's default: one worker per core but one
  federation_options o;
  o.log = logger::silent();
  federation fed{*rt.sys, o};
  auto app = std::make_shared<client_app>();
  caf::scoped_actor self{*rt.sys};
  in_process_grid g{self.ptr(), fed.grid_handle(), 1, {}, logger::silent()};
  std::vector<double> xs;
  for (uint64_t i = 0; i < 50; ++i) {
    auto id = 1000 + i;
    fed.add_node(id, app);
    fed.wait_for_nodes(1);
    double t0 = bench::now_s();
    fed.kill_node(id);
    while (!g.node_ids().empty()) {
    }
    xs.push_back(bench::now_s() - t0);
  }
  std::sort(xs.begin(), xs.end());
  bench::line("failure_detection").str("where", "in-process").str("how", "actor killed")
      .num("median_ms", xs[xs.size() / 2] * 1e3).num("max_ms", xs.back() * 1e3)
      .num("target_ms", 10).flag("met", xs[xs.size() / 2] * 1e3 <= 10).print();
}
