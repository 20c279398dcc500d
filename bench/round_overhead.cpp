// Wall time of one FedAvg round with an echo ClientApp (replies with its input
// arrays, no compute), fraction 1.0, in-process nodes; and resident memory per
// idle SuperNode actor.
//   round_overhead [max_nodes=100000 (up to 1000000)] [idle_nodes=100000] [all|tiny|model]
#include <cstdlib>
#include <thread>

#include <caf/send.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/federation.hpp"
#include "bench/bench_util.hpp"
#include "runtime/strategy/fed_avg.hpp"

using namespace stamen;

namespace {

size_t bench_threads() {
  // The runtime's default (0: one thread per core but one) unless overridden.
  if (const char* t = std::getenv("STAMEN_THREADS")) return std::stoul(t);
  return 0;
}

std::shared_ptr<const client_app> echo_app() {
  auto app = std::make_shared<client_app>();
  app->train([](const message& m, context&) {
    record_dict c;
    c.insert_or_assign("arrays", *m.content().arrays("arrays"));
    c.insert_or_assign("metrics", metric_record{{"num-examples", int64_t{1}}});
    return make_reply(m, std::move(c));
  });
  return app;
}

// Median wall time of a round (round 1 excluded as warm-up).
double round_seconds(size_t nodes, size_t floats, int rounds) {
  actor_runtime rt{bench_threads()};
  federation_options o;
  o.log = logger::silent();
  federation fed{*rt.sys, o};
  auto app = echo_app();
  for (size_t i = 0; i < nodes; ++i) fed.add_node(1000 + i, app);
  fed.wait_for_nodes(nodes, 600);
  std::vector<double> times;
  server_app srv;
  srv.main([&](grid& g, context&) {
    fed_avg_options opts;
    opts.fraction_evaluate = 0;
    opts.min_train_nodes = nodes;
    opts.min_available_nodes = nodes;
    opts.seed = 1;
    fed_avg s(opts);
    array_record init{{"w", array::from_values(dtype::float32, {static_cast<int64_t>(floats)},
                                               std::vector<float>(floats, 1.f))}};
    auto r = s.start(g, init, rounds, 600);
    for (size_t i = 1; i < r.train_rounds.size(); ++i) {
      if (r.train_rounds[i].results != nodes) std::abort();
      times.push_back(r.train_rounds[i].seconds);
    }
  });
  if (!fed.run(srv, {})) std::abort();
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

double plain_fedavg_seconds(size_t nodes, size_t floats) {
  std::vector<float> x(floats, 1.f);
  std::vector<double> sum(floats);
  return bench::median_time(5, 1, [&] {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (size_t n = 0; n < nodes; ++n)
      for (size_t i = 0; i < floats; ++i) sum[i] += x[i];
    for (auto& v : sum) v /= static_cast<double>(nodes);
  });
}

// CAF's own cost of an actor of the same interface with no state: what a
// node cannot go below. Measured in this process, before the nodes.
double caf_floor_bytes(size_t n) {
  actor_runtime rt{bench_threads()};
  std::vector<supernode_actor> actors;
  actors.reserve(n);
  size_t before = bench::rss_bytes();
  for (size_t i = 0; i < n; ++i)
    actors.push_back(rt.sys->spawn([]() -> supernode_actor::behavior_type {
      return {[](instruct_atom, envelope&) {}, [](done_atom, envelope&, record_dict&) {}};
    }));
  size_t after = bench::rss_bytes();
  for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  // The handles themselves (8 bytes each) are the bench's, not the actors'.
  return (static_cast<double>(after - before) - 8.0 * static_cast<double>(n)) / static_cast<double>(n);
}

// The floor in a process of its own (forked before any actor system
// exists): memory one measurement frees would flatter the other.
double caf_floor_bytes_apart(size_t n) {
  int fds[2];
  if (::pipe(fds) != 0) return 0;
  pid_t pid = ::fork();
  if (pid == 0) {
    double x = caf_floor_bytes(n);
    (void)!::write(fds[1], &x, sizeof x);
    ::_exit(0);
  }
  double x = 0;
  (void)!::read(fds[0], &x, sizeof x);
  ::close(fds[0]);
  ::close(fds[1]);
  ::waitpid(pid, nullptr, 0);
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  size_t max_nodes = argc > 1 ? std::stoul(argv[1]) : 100000;
  size_t idle_nodes = argc > 2 ? std::stoul(argv[2]) : 100000;
  std::string which = argc > 3 ? argv[3] : "all";
  // Idle memory first, while the heap holds nothing freed by other runs.
  double floor = caf_floor_bytes_apart(idle_nodes);
  double per = 0;
  {
    actor_runtime rt{bench_threads()};  // two workers on two cores livelock on each other's queues (see actor_runtime)
    federation_options o;
    o.log = logger::silent();
    federation fed{*rt.sys, o};
    auto app = echo_app();
    fed.wait_for_nodes(0, 1);
    size_t before = bench::rss_bytes();
    for (size_t i = 0; i < idle_nodes; ++i) fed.add_node(1000 + i, app);
    fed.wait_for_nodes(idle_nodes, 600);
    size_t after = bench::rss_bytes();
    per = static_cast<double>(after - before) / static_cast<double>(idle_nodes);
  }
  {
    bench::line("idle_node_memory").num("nodes", idle_nodes).num("bytes_per_node", per)
        .num("baseline_caf_actor_bytes", floor).num("ratio", per / floor)
        .num("target_bytes_per_node", 1536).flag("met", per <= 1536).print();
  }
  for (size_t n : {size_t{10}, size_t{1000}, size_t{10000}, size_t{100000}, size_t{1000000}}) {
    if (n > max_nodes || which == "model") break;
    // At least three timed rounds, so that the median is one (with two, the
    // upper one was reported: the slower round).
    double t = round_seconds(n, 10, n >= 10000 ? 4 : 6);
    bench::line("round_overhead").str("model", "tiny-10-floats").num("nodes", n)
        .num("round_seconds", t).num("us_per_node", t / n * 1e6).num("target_us_per_node", 10)
        .flag("met", t / n * 1e6 <= 10).print();
  }
  for (size_t n : {size_t{10}, size_t{1000}}) {
    if (which == "tiny") break;
    double t = round_seconds(n, 62006, 5);
    double base = plain_fedavg_seconds(n, 62006);
    bench::line("round_overhead").str("model", "quickstart-62k-floats").num("nodes", n)
        .num("round_seconds", t).num("baseline_plain_fedavg_seconds", base)
        .num("ratio", t / base).num("target_ratio", 3).flag("met", t / base <= 3).print();
  }
}
