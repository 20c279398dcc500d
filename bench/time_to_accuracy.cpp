// Time to accuracy with stragglers: the quickstart (`stamen run`, a child
// process) with synchronous FedAvg and with asynchronous FedBuff, in the same
// run, with and without 3 of its 10 nodes slowed (their train replies held
// for ~5x a training's time by a `slow` fault). Reports the wall seconds
// until eval_acc first reaches the target, each strategy's final accuracy,
// and the ratio FedBuff / FedAvg.
//   time_to_accuracy STAMEN_BIN APP_DIR [target=0.75]
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cmath>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "bench/bench_util.hpp"

namespace fs = std::filesystem;

namespace {

struct outcome {
  std::optional<double> seconds_to_target;  ///< end of the first evaluation at or over it
  double final_acc = 0;
  double train_seconds_per_round = 0;       ///< synchronous runs: mean train phase
};

nlohmann::json run(const std::string& stamen, const std::string& app, const std::string& config,
                   const std::string& faults) {
  auto dir = fs::temp_directory_path() / ("stamen-tta-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto out = (dir / "out.json").string();
  std::string cmd = stamen + " run " + app + " --format json --run-config \"" + config +
                    " final-model='" + (dir / "final.pt").string() + "'\"" +
                    (faults.empty() ? "" : " --faults " + faults) + " >" + out + " 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "time_to_accuracy: failed: %s\n", cmd.c_str());
    std::exit(1);
  }
  std::ifstream in(out);
  auto doc = nlohmann::json::parse(in);
  fs::remove_all(dir);
  return doc;
}

outcome read(const nlohmann::json& doc, double target) {
  outcome o;
  if (doc.contains("versions")) {
    for (auto& v : doc["versions"]) {
      if (!v.contains("evaluate") || !v["evaluate"].contains("metrics")) continue;
      double acc = v["evaluate"]["metrics"]["eval_acc"];
      double t = v["seconds"].get<double>() + v["evaluate"]["seconds"].get<double>();
      if (!o.seconds_to_target && acc >= target) o.seconds_to_target = t;
      o.final_acc = acc;
    }
    return o;
  }
  double t = 0, train = 0;
  for (auto& r : doc["rounds"]) {
    t += r["train"]["seconds"].get<double>() + r["evaluate"]["seconds"].get<double>();
    train += r["train"]["seconds"].get<double>();
    double acc = r["evaluate"]["metrics"]["eval_acc"];
    if (!o.seconds_to_target && acc >= target) o.seconds_to_target = t;
    o.final_acc = acc;
  }
  o.train_seconds_per_round = train / static_cast<double>(doc["rounds"].size());
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: time_to_accuracy STAMEN_BIN APP_DIR [target]\n");
    return 2;
  }
  std::string stamen = argv[1], app = argv[2];
  double target = argc > 3 ? std::atof(argv[3]) : 0.75;
  // The same work for both: 5 rounds of 5 trainings, or 8 versions of 3.
  const std::string fedavg = "strategy='fedavg' num-server-rounds=5";
  const std::string fedbuff =
      "strategy='fedbuff' concurrency=5 buffer-size=3 num-server-updates=8 sampling='random'";

  auto plain_avg = read(run(stamen, app, fedavg, ""), target);
  auto plain_buff = read(run(stamen, app, fedbuff, ""), target);
  // Stragglers: 3 nodes' train replies held for ~5x a round's training time.
  double hold_ms = 5 * plain_avg.train_seconds_per_round * 1000;
  auto plan = fs::temp_directory_path() / ("stamen-tta-slow-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(plan) << "[faults]\nseed = 7\n[[faults.rule]]\naction = \"slow\"\nnodes = [1, 4, 7]\n"
                         "phase = \"train\"\ndelay-ms = "
                      << static_cast<int64_t>(hold_ms) << "\n";
  auto slow_avg = read(run(stamen, app, fedavg, plan.string()), target);
  auto slow_buff = read(run(stamen, app, fedbuff, plan.string()), target);
  fs::remove(plan);

  auto report = [&](const char* scenario, const outcome& avg, const outcome& buff, double want) {
    bench::line l("time_to_accuracy");
    l.str("scenario", scenario).num("target_acc", target).num("hold_ms", hold_ms);
    l.num("fedavg_s", avg.seconds_to_target.value_or(-1)).num("fedavg_final_acc", avg.final_acc);
    l.num("fedbuff_s", buff.seconds_to_target.value_or(-1)).num("fedbuff_final_acc", buff.final_acc);
    bool both = avg.seconds_to_target && buff.seconds_to_target;
    double ratio = both ? *buff.seconds_to_target / *avg.seconds_to_target : -1;
    l.num("ratio", ratio);
    if (want > 0)
      l.num("target_ratio", want)
          .flag("met", both && ratio <= want && std::abs(buff.final_acc - avg.final_acc) <= 0.02);
    l.print();
  };
  report("3 of 10 nodes slowed", slow_avg, slow_buff, 0.5);
  report("no straggler", plain_avg, plain_buff, 0);
}
