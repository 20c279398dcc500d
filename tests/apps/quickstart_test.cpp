// End to end: the real `stamen` binary runs the quickstart app on a slice of
// real Fashion-MNIST, and the command-line contract holds.
#include <torch/torch.h>
#include <zlib.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/data/loaders.hpp"

namespace fs = std::filesystem;

namespace {

struct outcome {
  int code;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct workspace {
  workspace() {
    dir = fs::temp_directory_path() / ("stamen-e2e-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "data");
    fs::create_directories(dir / "app");
  }
  ~workspace() { fs::remove_all(dir); }

  outcome stamen(const std::string& args) {
    auto out = dir / "stdout", err = dir / "stderr";
    auto cmd = std::string{STAMEN_BIN} + " " + args + " >" + out.string() + " 2>" + err.string();
    int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  }

  void write_app(const std::string& extra_config = "") {
    std::ofstream(dir / "app" / "stamen.toml") << R"([app]
name = "quickstart-e2e"
library = "stamen_app_quickstart"

[app.config]
num-server-rounds = 1
fraction-train = 1.0
fraction-evaluate = 1.0
local-epochs = 2
lr = 0.01
batch-size = 32
dataset = "fashion-mnist"
data-dir = ")" + (dir / "data").string() + R"("
partitioner = "iid"
seed = 42
final-model = ")" + (dir / "final.pt").string() + R"("
)" + extra_config + R"(
[federations]
default = "three"

[federations.three]
options.num-supernodes = 3
)";
  }

  fs::path dir;
};

void be32(std::ostream& out, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) out.put(static_cast<char>(x >> s));
}

// Writes the first `n` training images of the real data set as plain IDX files.
void write_slice(const fs::path& to, size_t n) {
  auto ds = stamen::data::load_mnist_dir(stamen::data::default_fashion_mnist_dir);
  BOOST_REQUIRE_MESSAGE(ds.has_value(), (ds ? std::string{} : ds.error().what));
  std::ofstream img(to / "train-images-idx3-ubyte", std::ios::binary);
  be32(img, 0x803);
  be32(img, static_cast<uint32_t>(n));
  be32(img, 28);
  be32(img, 28);
  img.write(reinterpret_cast<const char*>(ds->pixels.data()), static_cast<std::streamsize>(n * 784));
  std::ofstream lab(to / "train-labels-idx1-ubyte", std::ios::binary);
  be32(lab, 0x801);
  be32(lab, static_cast<uint32_t>(n));
  lab.write(reinterpret_cast<const char*>(ds->labels.data()), static_cast<std::streamsize>(n));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(quickstart_suite)

BOOST_AUTO_TEST_CASE(trains_on_real_fashion_mnist_and_saves_a_loadable_model) {
  workspace ws;
  write_slice(ws.dir / "data", 3000);
  ws.write_app();
  auto r = ws.stamen("run " + (ws.dir / "app").string() +
                     " --run-config \"num-server-rounds=2\" --format json");
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  BOOST_TEST(r.err.find("configure_train: Sampled 3 nodes (out of 3)") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("aggregate_train: Received 3 results and 0 failures") != std::string::npos);
  BOOST_TEST(r.err.find("[ROUND 2/2]") != std::string::npos);
  BOOST_TEST(r.err.find("Saving final model to disk...") != std::string::npos);

  auto doc = nlohmann::json::parse(r.out);
  auto& rounds = doc.at("rounds");
  BOOST_REQUIRE(rounds.size() == 2u);
  double loss1 = rounds[0]["evaluate"]["metrics"]["eval_loss"];
  double loss2 = rounds[1]["evaluate"]["metrics"]["eval_loss"];
  double acc2 = rounds[1]["evaluate"]["metrics"]["eval_acc"];
  double tloss1 = rounds[0]["train"]["metrics"]["train_loss"];
  double tloss2 = rounds[1]["train"]["metrics"]["train_loss"];
  BOOST_TEST(loss2 < loss1);
  BOOST_TEST(tloss2 < tloss1);
  BOOST_TEST(acc2 > 0.3);  // chance is 0.1

  // final.pt reloads in C++ into the tutorial's Net shapes.
  std::ifstream in(ws.dir / "final.pt", std::ios::binary);
  BOOST_REQUIRE(in.good());
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto dict = torch::pickle_load(bytes).toGenericDict();
  BOOST_TEST(dict.size() == 10u);
  BOOST_TEST((dict.at("conv1.weight").toTensor().sizes() == torch::IntArrayRef{6, 1, 5, 5}));
  BOOST_TEST((dict.at("fc1.weight").toTensor().sizes() == torch::IntArrayRef{120, 256}));
  BOOST_TEST((dict.at("fc3.bias").toTensor().sizes() == torch::IntArrayRef{10}));

  // If Debian's python3-torch is there, the model loads into PyTorch's Net too.
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0) {
    auto check = std::string{"/usr/bin/python3 "} + STAMEN_SOURCE_DIR +
                 "/apps/quickstart/load_final_model.py " + (ws.dir / "final.pt").string();
    BOOST_TEST(std::system(check.c_str()) == 0);
  } else {
    BOOST_TEST_MESSAGE("python3-torch not installed: skipped loading final.pt in PyTorch");
  }
}

BOOST_AUTO_TEST_CASE(command_line_errors_are_clear_and_non_zero) {
  workspace ws;
  ws.write_app();
  auto app = (ws.dir / "app").string();

  auto unknown = ws.stamen("run " + app + " --run-config \"num-server-rounds=5 bogus=1\"");
  BOOST_TEST(unknown.code == 2);
  BOOST_TEST(unknown.err.find("unknown run config key 'bogus'") != std::string::npos, unknown.err);

  auto type = ws.stamen("run " + app + " --run-config \"lr=fast\"");
  BOOST_TEST(type.code == 2);
  BOOST_TEST(type.err.find("run config key 'lr' expects a float, got a string") != std::string::npos,
             type.err);

  auto missing = ws.stamen("run " + (ws.dir / "nope").string());
  BOOST_TEST(missing.code == 2);
  BOOST_TEST(missing.err.find("does not exist") != std::string::npos, missing.err);

  auto fed = ws.stamen("run " + app + " --federation nope");
  BOOST_TEST(fed.code == 2);
  BOOST_TEST(fed.err.find("unknown federation 'nope' (known: three)") != std::string::npos, fed.err);

  std::ofstream(ws.dir / "over.toml") << "num-server-rounds = 2\nextra = true\n";
  auto file = ws.stamen("run " + app + " --run-config " + (ws.dir / "over.toml").string());
  BOOST_TEST(file.code == 2);
  BOOST_TEST(file.err.find("unknown run config key 'extra'") != std::string::npos, file.err);

  std::ofstream(ws.dir / "app" / "stamen.toml", std::ios::app) << "\n[federations.three.options]\nbad = \n";
  auto toml = ws.stamen("run " + app);
  BOOST_TEST(toml.code == 2);
  BOOST_TEST(toml.err.find("stamen.toml") != std::string::npos, toml.err);

  // A data directory without the data set fails the run, naming the file.
  ws.write_app();
  auto nodata = ws.stamen("run " + app);
  BOOST_TEST(nodata.code == 1);
  BOOST_TEST(nodata.err.find("train-images-idx3-ubyte") != std::string::npos, nodata.err);
}

BOOST_AUTO_TEST_SUITE_END()
