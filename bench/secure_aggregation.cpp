// SecAgg+ against plain FedAvg on the same replies, in the same process:
// in-process SuperNodes whose ClientApp answers at once with a fixed update
// of the quickstart's size (62,006 floats, Flower's quickstart CNN), so that
// a round's time is all aggregation and transport, none of it training.
// For 10, 100 and 1,000 nodes, num-shares at Flower's example's 3 and at a
// logarithmic choice (log2 n, odd), each as the median of 3 rounds after one
// of warm-up:
//   - round_seconds, and ratio = SecAgg+ round / plain FedAvg round;
//   - server_cpu_s: the process's CPU in the round less the ClientApps'
//     (server, grid and transport);
//   - client_cpu_ms_per_node: the ClientApps' CPU (the mod and the stand-in
//     trainer, measured per call on the calling thread), per node;
//   - bytes_per_node: payload on the wire, both ways, per node.
// Then, given the stamen command and the quickstart, the same comparison on
// top of the training: `stamen run` of the quickstart at 100 and 1,000 nodes
// (fraction-train 1), plain, then SecAgg+ with each num-shares, the train
// round's wall time from the JSON result (median of 3 rounds).
// Targets: at 100 nodes a SecAgg+ round of the quickstart costs at most 3x a
// plain one, and the server's CPU grows as n log n or better from 10 to 100
// to 1,000. The rounds without training state how much of a round the
// protocol itself is.
//   secure_aggregation [max_nodes=1000] [STAMEN_BIN APP_DIR]
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "actors/federation.hpp"
#include "bench/bench_util.hpp"
#include "runtime/secagg/secagg_plus_mod.hpp"
#include "runtime/secagg/secagg_plus_workflow.hpp"
#include "runtime/strategy/fed_avg.hpp"

using namespace stamen;

namespace {

constexpr size_t floats = 62006;

double cpu_now(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::atomic<int64_t> client_cpu_ns{0};

// Times the rest of the chain on this thread: what the node spends.
message timed(const message& m, context& ctx, const handler& next) {
  double t0 = cpu_now(CLOCK_THREAD_CPUTIME_ID);
  auto reply = next(m, ctx);
  client_cpu_ns += static_cast<int64_t>((cpu_now(CLOCK_THREAD_CPUTIME_ID) - t0) * 1e9);
  return reply;
}

// A node's update: the arrays it got plus a small node-specific step, so
// that every update differs and stays well inside the clipping range.
std::shared_ptr<const client_app> app(bool secure, int64_t num_examples) {
  std::vector<mod> mods{timed};
  if (secure) mods.push_back(secaggplus_mod);
  auto a = std::make_shared<client_app>(mods);
  a->train([num_examples](const message& m, context& ctx) {
    auto in = m.content().arrays("arrays")->get("w")->to_vector<float>();
    float step = 0.001f * static_cast<float>(ctx.node_id % 97);
    for (size_t i = 0; i < in.size(); ++i) in[i] += step * static_cast<float>((i % 7) - 3);
    array_record arrays{{"w", array::from_values(dtype::float32, {static_cast<int64_t>(in.size())}, in)}};
    record_dict c;
    c.insert_or_assign("arrays", std::move(arrays));
    c.insert_or_assign("metrics", metric_record{{"num-examples", num_examples}});
    return make_reply(m, std::move(c));
  });
  return a;
}

struct measured {
  double round_s = 0, server_cpu_s = 0, client_cpu_ms_per_node = 0, bytes_per_node = 0;
};

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

// num_shares 0: plain FedAvg.
measured run(size_t nodes, int num_shares, int threshold) {
  actor_runtime rt{0};
  federation_options o;
  o.log = logger::silent();
  federation fed{*rt.sys, o};
  bool secure = num_shares > 0;
  auto a = app(secure, static_cast<int64_t>(60000 / nodes));
  for (size_t i = 0; i < nodes; ++i) fed.add_node(1000 + i, a);
  fed.wait_for_nodes(nodes, 600);
  std::vector<double> wall, server, client, bytes;
  server_app srv;
  srv.main([&](grid& g, context&) {
    fed_avg_options opts;
    opts.fraction_evaluate = 0;
    opts.min_train_nodes = nodes;
    opts.min_available_nodes = nodes;
    opts.seed = 1;
    array_record arrays{{"w", array::from_values(dtype::float32, {static_cast<int64_t>(floats)},
                                                 std::vector<float>(floats, 0.5f))}};
    for (int rep = 0; rep < 4; ++rep) {
      fed_avg s(opts);
      if (secure) {
        secagg::secagg_plus_options sa;
        sa.num_shares = {static_cast<double>(num_shares), false};
        sa.reconstruction_threshold = {static_cast<double>(threshold), false};
        sa.max_weight = 60000;
        sa.seed = 7 + rep;
        s.set_train_workflow(std::make_shared<secagg_plus_workflow>(sa));
      }
      client_cpu_ns = 0;
      double cpu0 = cpu_now(CLOCK_PROCESS_CPUTIME_ID);
      auto r = s.start(g, arrays, 1, 600);
      double cpu = cpu_now(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
      if (r.train_rounds.size() != 1 || r.train_rounds[0].results != nodes) {
        std::fprintf(stderr, "secure_aggregation: a round of %zu nodes lost replies: %s\n", nodes,
                     r.error.c_str());
        std::exit(1);
      }
      auto& t = r.train_rounds[0];
      double b = 0;
      if (t.secure_aggregation)
        for (auto& s : t.secure_aggregation->bytes) b += static_cast<double>(s.sent + s.received);
      else
        b = 2.0 * 4.0 * floats * static_cast<double>(nodes);  // the arrays, there and back
      if (rep == 0) continue;  // warm-up
      double c = static_cast<double>(client_cpu_ns.load()) * 1e-9;
      wall.push_back(t.seconds);
      server.push_back(cpu - c);
      client.push_back(c / static_cast<double>(nodes) * 1e3);
      bytes.push_back(b / static_cast<double>(nodes));
    }
  });
  if (!fed.run(srv, {})) std::abort();
  return {median(wall), median(server), median(client), median(bytes)};
}

// The median train round of a quickstart run (`extra` added to its run
// config), and the num-shares its JSON reports; exits on a failed run.
std::pair<double, int> quickstart_round(const std::string& stamen, const std::string& app,
                                        size_t nodes, const std::string& extra) {
  auto dir = std::filesystem::temp_directory_path() / "stamen-bench-secagg";
  std::filesystem::create_directories(dir);
  auto out = (dir / "out.json").string();
  std::string cmd = stamen + " run " + app + " --format json --federation-config num-supernodes=" +
                    std::to_string(nodes) +
                    " --run-config \"num-server-rounds=3 fraction-train=1.0 fraction-evaluate=0.1 " +
                    extra + "\" > " + out + " 2> " + (dir / "err.log").string();
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "secure_aggregation: '%s' failed; see %s\n", cmd.c_str(),
                 (dir / "err.log").c_str());
    std::exit(1);
  }
  std::ifstream in(out);
  auto doc = nlohmann::json::parse(in);
  std::vector<double> xs;
  int shares = 0;
  for (auto& r : doc.at("rounds")) {
    auto& train = r.at("train");
    if (train.at("results").get<size_t>() != nodes) {
      std::fprintf(stderr, "secure_aggregation: a quickstart round lost replies: %s\n",
                   train.dump().c_str());
      std::exit(1);
    }
    xs.push_back(train.at("seconds").get<double>());
    if (train.contains("secure_aggregation"))
      shares = train.at("secure_aggregation").at("num_shares").get<int>();
  }
  return {median(xs), shares};
}

int log_shares(size_t n) {
  int k = static_cast<int>(std::ceil(std::log2(static_cast<double>(n))));
  k |= 1;  // odd, as a ring neighbourhood with itself in the middle
  return std::max(3, std::min(k, static_cast<int>(n)));
}

}  // namespace

int main(int argc, char** argv) {
  size_t max_nodes = argc > 1 ? std::stoul(argv[1]) : 1000;
  struct row {
    size_t n;
    std::string choice;
    int k;
    measured m;
  };
  std::vector<row> rows;
  for (size_t n : {size_t{10}, size_t{100}, size_t{1000}}) {
    if (n > max_nodes) break;
    auto plain = run(n, 0, 0);
    for (auto [choice, k] : {std::pair<std::string, int>{"flower-example", 3}, {"log2", log_shares(n)}}) {
      int threshold = k / 2 + 1;
      auto m = run(n, k, threshold);
      double ratio = m.round_s / plain.round_s;
      auto l = bench::line("secure_aggregation_no_training");
      l.str("model", "quickstart-62k-floats").num("nodes", n).str("num_shares_choice", choice)
          .num("num_shares", k).num("reconstruction_threshold", threshold)
          .num("round_seconds", m.round_s).num("baseline_plain_fedavg_round_seconds", plain.round_s)
          .num("ratio", ratio).num("server_cpu_s", m.server_cpu_s)
          .num("baseline_plain_server_cpu_s", plain.server_cpu_s)
          .num("client_cpu_ms_per_node", m.client_cpu_ms_per_node)
          .num("baseline_plain_client_cpu_ms_per_node", plain.client_cpu_ms_per_node)
          .num("bytes_per_node", m.bytes_per_node)
          .num("baseline_plain_bytes_per_node", plain.bytes_per_node);
      l.print();
      rows.push_back({n, choice, k, m});
    }
  }
  if (argc > 3) {
    for (size_t n : {size_t{100}, size_t{1000}}) {
      if (n > max_nodes) break;
      auto plain = quickstart_round(argv[2], argv[3], n, "");
      for (auto [choice, k] : {std::pair<std::string, int>{"flower-example", 3}, {"log2", log_shares(n)}}) {
        auto sa = quickstart_round(argv[2], argv[3], n,
                                   "secure-aggregation='secaggplus' num-shares=" + std::to_string(k) +
                                       " reconstruction-threshold=" + std::to_string(k / 2 + 1));
        double ratio = sa.first / plain.first;
        auto l = bench::line("secure_aggregation_quickstart");
        l.num("nodes", n).str("num_shares_choice", choice).num("num_shares", sa.second)
            .num("round_seconds", sa.first).num("baseline_plain_fedavg_round_seconds", plain.first)
            .num("ratio", ratio);
        if (n == 100) l.num("target_ratio", 3).flag("met", ratio <= 3);
        l.print();
      }
    }
  }
  // The server's growth: CPU(10n) / CPU(n) against 10n log(10n) / (n log n).
  for (auto& choice : {std::string{"flower-example"}, std::string{"log2"}}) {
    std::vector<const row*> rs;
    for (auto& r : rows)
      if (r.choice == choice) rs.push_back(&r);
    for (size_t i = 1; i < rs.size(); ++i) {
      double n0 = static_cast<double>(rs[i - 1]->n), n1 = static_cast<double>(rs[i]->n);
      double growth = rs[i]->m.server_cpu_s / rs[i - 1]->m.server_cpu_s;
      double nlogn = n1 * std::log(n1) / (n0 * std::log(n0));
      bench::line("secure_aggregation_growth").str("num_shares_choice", choice)
          .num("from_nodes", n0).num("to_nodes", n1).num("server_cpu_growth", growth)
          .num("n_log_n_growth", nlogn).num("exponent", std::log(growth) / std::log(n1 / n0))
          .flag("met", growth <= nlogn).print();
    }
  }
}
