// An installed Stamen: `cmake --install` into a temporary prefix, `stamen
// new` a minimal app, build it out of tree against the installed package,
// and run it with the installed command.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/child_process.hpp"
#include "tests/support/shell.hpp"

namespace fs = std::filesystem;

namespace {

using stamen::test::outcome;

struct sandbox {
  sandbox() : dir(fs::temp_directory_path() / ("stamen-install-" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir / "projects");
  }
  ~sandbox() { fs::remove_all(dir); }

  outcome sh(const std::string& cmd) { return stamen::test::shell(cmd, dir); }

  /// Installs the build tree into dir/prefix; returns the installed `stamen`.
  std::string install() {
    auto r = sh(std::string{"\""} + CMAKE_COMMAND + "\" --install " + STAMEN_BUILD_DIR +
                " --prefix " + prefix());
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    return prefix() + "/bin/stamen";
  }
  std::string prefix() const { return (dir / "prefix").string(); }

  /// `stamen new NAME --template T`, then configures and builds it against
  /// the package installed in `prefix` (default: prefix()); returns the
  /// project's directory.
  std::string new_and_build(const std::string& stamen, const std::string& name,
                            const std::string& templ, std::string prefix = {}) {
    if (prefix.empty()) prefix = this->prefix();
    auto created = sh(stamen + " new " + name + " --template " + templ + " --dir " +
                      (dir / "projects").string());
    BOOST_REQUIRE_MESSAGE(created.code == 0, created.err);
    auto project = (dir / "projects" / name).string();
    auto configure = sh(std::string{"\""} + CMAKE_COMMAND + "\" -S " + project + " -B " +
                        project + "/build -DCMAKE_PREFIX_PATH=" + prefix);
    BOOST_REQUIRE_MESSAGE(configure.code == 0, configure.out << configure.err);
    auto build = sh(std::string{"\""} + CMAKE_COMMAND + "\" --build " + project + "/build -j 2");
    BOOST_REQUIRE_MESSAGE(build.code == 0, build.out << build.err);
    return project;
  }

  fs::path dir;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(installed)

BOOST_AUTO_TEST_CASE(new_app_builds_out_of_tree_against_the_installed_package_and_runs) {
  sandbox s;
  auto stamen = s.install();
  auto prefix = s.prefix();
  auto version = s.sh(stamen + " --version");
  BOOST_TEST(version.code == 0);
  BOOST_TEST(version.out == std::string{"stamen "} + STAMEN_VERSION + "\n");

  auto demo = s.new_and_build(stamen, "demo", "minimal");
  for (auto* f : {"CMakeLists.txt", "stamen.toml", "task.hpp", "task.cpp", "client_app.cpp",
                  "server_app.cpp", "README.md"})
    BOOST_TEST(fs::exists(fs::path{demo} / f), f);

  // No STAMEN_APP_PATH, no LD_LIBRARY_PATH: the app is found in its build/.
  auto run = s.sh("env -u STAMEN_APP_PATH -u LD_LIBRARY_PATH " + stamen + " run " + demo +
                  " --run-config num-server-rounds=2 --format json");
  BOOST_REQUIRE_MESSAGE(run.code == 0, run.err);
  auto doc = nlohmann::json::parse(run.out);
  BOOST_REQUIRE_EQUAL(doc.at("rounds").size(), 2u);
  for (auto& r : doc.at("rounds")) {
    BOOST_TEST(r.at("train").at("results").get<int>() == 5);
    BOOST_TEST(r.at("train").at("failures").get<int>() == 0);
  }
  // The linear model is learned: the error falls to the data's noise (0.01).
  BOOST_TEST(doc.at("rounds").at(1).at("evaluate").at("metrics").at("eval_loss").get<double>() < 0.05);

  // The installed quickstart app is found in lib/stamen/apps.
  BOOST_TEST(fs::exists(prefix + "/share/stamen/apps/quickstart/stamen.toml"));
  BOOST_TEST(fs::exists(prefix + "/lib/stamen/apps/libstamen_app_quickstart.so"));

  // The same app on a cluster of installed processes: only the submitter
  // has it (in its build/); its bundle reaches the superlink and the nodes.
  using stamen::test::child_process;
  child_process link{{stamen, "superlink", "--port", "0", "--insecure-accept-bundles"},
                     (s.dir / "superlink.log").string()};
  BOOST_REQUIRE_MESSAGE(link.wait_for("listening on ", 15) >= 0, link.log());
  auto address = "127.0.0.1:" + link.word_after("listening on ");
  std::vector<std::unique_ptr<child_process>> nodes;
  for (int i = 0; i < 2; ++i)
    nodes.push_back(std::make_unique<child_process>(
        std::vector<std::string>{stamen, "supernode", "--superlink", address, "--insecure-accept-bundles",
                                 "--bundle-cache", (s.dir / ("cache-" + std::to_string(i))).string(),
                                 "--node-config", "partition-id=" + std::to_string(i) + " num-partitions=2"},
        (s.dir / ("node-" + std::to_string(i) + ".log")).string()));
  BOOST_REQUIRE_MESSAGE(link.wait_for("joined from", 20, 2) >= 0, link.log());
  auto cluster = s.sh("env -u STAMEN_APP_PATH -u LD_LIBRARY_PATH " + stamen + " run " + demo +
                      " --federation local-cluster --federation-config address=" + address +
                      " --run-config num-server-rounds=2 --format json");
  BOOST_REQUIRE_MESSAGE(cluster.code == 0, cluster.err << link.log());
  auto on_cluster = nlohmann::json::parse(cluster.out);
  BOOST_REQUIRE_EQUAL(on_cluster.at("rounds").size(), 2u);
  BOOST_TEST(on_cluster.at("rounds").at(1).at("train").at("results").get<int>() == 2);
  for (auto& n : nodes) BOOST_TEST(n->count("installed bundle") == 1u, n->log());
}

BOOST_AUTO_TEST_CASE(the_pytorch_template_is_the_quickstart_built_out_of_tree) {
  sandbox s;
  auto stamen = s.install();
  auto tut = s.new_and_build(stamen, "tut", "pytorch");
  if (!fs::exists("/usr/share/datasets/fashion-mnist")) return;
  auto run = s.sh("env -u STAMEN_APP_PATH -u LD_LIBRARY_PATH " + stamen + " run " + tut +
                  " --format json --run-config \"num-server-rounds=1 fraction-evaluate=0.3 "
                  "final-model='" + (s.dir / "final.pt").string() + "'\"");
  BOOST_REQUIRE_MESSAGE(run.code == 0, run.err);
  BOOST_TEST(run.err.find("Starting FedAvg strategy:") != std::string::npos);
  auto doc = nlohmann::json::parse(run.out);
  BOOST_TEST(doc.at("rounds").at(0).at("train").at("results").get<int>() == 5);
  BOOST_TEST(doc.at("rounds").at(0).at("evaluate").at("metrics").at("eval_acc").get<double>() > 0.3);
}

BOOST_AUTO_TEST_CASE(stamen_new_refuses_bad_names_templates_and_existing_directories) {
  sandbox s;
  auto projects = (s.dir / "projects").string();
  auto stamen = std::string{STAMEN_BIN};
  auto bad = s.sh(stamen + " new 2fast --dir " + projects);
  BOOST_TEST(bad.code == 2);
  BOOST_TEST(bad.err.find("'2fast' is not a valid name") != std::string::npos, bad.err);
  auto dash = s.sh(stamen + " new my-app --dir " + projects);
  BOOST_TEST(dash.code == 2);
  auto unknown = s.sh(stamen + " new ok --template tensorflow --dir " + projects);
  BOOST_TEST(unknown.code == 2);
  BOOST_TEST(unknown.err.find("unknown template 'tensorflow' (known: minimal, pytorch)") != std::string::npos,
             unknown.err);
  BOOST_TEST(!fs::exists(s.dir / "projects" / "ok"));
  BOOST_REQUIRE(s.sh(stamen + " new ok --dir " + projects).code == 0);
  std::ofstream(s.dir / "projects" / "ok" / "task.cpp") << "// mine\n";
  auto again = s.sh(stamen + " new ok --dir " + projects);
  BOOST_TEST(again.code == 2);
  BOOST_TEST(again.err.find("exists already; nothing was written") != std::string::npos, again.err);
  BOOST_TEST(stamen::test::slurp(s.dir / "projects" / "ok" / "task.cpp") == "// mine\n");
}

BOOST_AUTO_TEST_CASE(debian_package_declares_what_it_needs_and_runs_from_its_files) {
  sandbox s;
  auto out = (s.dir / "deb").string();
  auto pack = s.sh(std::string{"cpack -G DEB --config "} + STAMEN_BUILD_DIR + "/CPackConfig.cmake -B " + out);
  BOOST_REQUIRE_MESSAGE(pack.code == 0, pack.out << pack.err);
  auto deb = out + "/stamen_" + STAMEN_VERSION + "_amd64.deb";
  BOOST_REQUIRE(fs::exists(deb));
  BOOST_TEST_MESSAGE(".deb size: " << fs::file_size(deb) << " bytes");
  auto field = [&](const std::string& f) {
    auto r = s.sh("dpkg-deb -f " + deb + " " + f);
    return r.out;
  };
  BOOST_TEST(field("Package") == "stamen\n");
  BOOST_TEST(field("Version") == std::string{STAMEN_VERSION} + "\n");
  auto depends = field("Depends");
  for (auto* lib : {"libcaf-core0.17", "libcaf-io0.17", "libcapnp-0.9.2", "libtorch1.13", "libssl3"})
    BOOST_TEST(depends.find(lib) != std::string::npos, lib << " in " << depends);
  auto files = s.sh("dpkg-deb -c " + deb).out;
  for (auto* f : {"./usr/bin/stamen", "./usr/lib/libstamen_core.so",
                  "./usr/lib/stamen/apps/libstamen_app_quickstart.so",
                  "./usr/share/stamen/apps/quickstart/stamen.toml",
                  "./usr/include/stamen/runtime/strategy/fed_avg.hpp",
                  "./usr/lib/cmake/Stamen/StamenConfig.cmake"})
    BOOST_TEST(files.find(f) != std::string::npos, f);
  BOOST_TEST(files.find("actors/") == std::string::npos);  // no actors' internals

  // Installed by dpkg under a temporary root with its own database (its
  // dependencies are this machine's, so dpkg is told not to look for them
  // there), it runs as it is (RPATH), and builds and runs a new app.
  auto root = (s.dir / "root").string();
  fs::create_directories(root + "/var/lib/dpkg/info");
  fs::create_directories(root + "/var/lib/dpkg/updates");
  std::ofstream{root + "/var/lib/dpkg/status"};
  auto installed = s.sh("dpkg --root=" + root + " --force-depends --force-script-chrootless --force-not-root -i " + deb);
  BOOST_REQUIRE_MESSAGE(installed.code == 0, installed.out << installed.err);
  auto listed = s.sh("dpkg --root=" + root + " -l stamen");
  BOOST_TEST(listed.out.find("ii  stamen") != std::string::npos, listed.out);
  auto stamen = root + "/usr/bin/stamen";
  auto version = s.sh("env -u LD_LIBRARY_PATH " + stamen + " --version");
  BOOST_TEST(version.out == std::string{"stamen "} + STAMEN_VERSION + "\n");
  auto demo = s.new_and_build(stamen, "from_deb", "minimal", root + "/usr");
  auto minimal = s.sh("env -u STAMEN_APP_PATH -u LD_LIBRARY_PATH " + stamen + " run " + demo +
                      " --run-config num-server-rounds=1 --format json");
  BOOST_REQUIRE_MESSAGE(minimal.code == 0, minimal.err);
  BOOST_TEST(nlohmann::json::parse(minimal.out).at("rounds").at(0).at("train").at("results").get<int>() == 5);
  if (!fs::exists("/usr/share/datasets/fashion-mnist")) return;  // the package only recommends it
  auto run = s.sh("env -u STAMEN_APP_PATH -u LD_LIBRARY_PATH " + root + "/usr/bin/stamen run " +
                  root + "/usr/share/stamen/apps/quickstart --format json --run-config "
                  "\"num-server-rounds=1 fraction-train=0.2 fraction-evaluate=0.2 final-model='" +
                  (s.dir / "final.pt").string() + "'\"");
  BOOST_REQUIRE_MESSAGE(run.code == 0, run.err);
  auto doc = nlohmann::json::parse(run.out);
  BOOST_TEST(doc.at("rounds").at(0).at("train").at("results").get<int>() == 2);
}

BOOST_AUTO_TEST_SUITE_END()
