#include "config/app_config.hpp"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

using namespace stamen;
namespace fs = std::filesystem;

namespace {

struct app_dir {
  explicit app_dir(const std::string& toml) {
    path = fs::temp_directory_path() / ("stamen-cfg-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(counter++));
    fs::create_directories(path);
    std::ofstream(path / "stamen.toml") << toml;
  }
  ~app_dir() { fs::remove_all(path); }
  fs::path path;
  static inline int counter = 0;
};

const char* good = R"([app]
name = "demo"
library = "demo_app"

[app.config]
zeta = 1
alpha = 0.5
name = "x"
flags = [true, false]
nested.inner = 3

[federations]
default = "sim"

[federations.sim]
options.num-supernodes = 4
options.compute-threads = 1

[federations.big]
options.num-supernodes = 100
)";

}  // namespace

BOOST_AUTO_TEST_SUITE(app_config_suite)

BOOST_AUTO_TEST_CASE(parses_in_file_order) {
  app_dir d{good};
  auto cfg = load_app_config(d.path);
  BOOST_REQUIRE_MESSAGE(cfg.has_value(), (cfg ? std::string{} : cfg.error().what));
  BOOST_TEST(cfg->name == "demo");
  BOOST_TEST(cfg->library == "demo_app");
  std::vector<std::string> keys;
  for (auto& [k, v] : cfg->run_config) keys.push_back(k);
  BOOST_TEST(keys == (std::vector<std::string>{"zeta", "alpha", "name", "flags", "nested.inner"}),
             boost::test_tools::per_element());
  auto sim = cfg->federation("");
  BOOST_REQUIRE(sim.has_value());
  BOOST_TEST(sim->name == "sim");
  BOOST_TEST(sim->num_supernodes == 4u);
  BOOST_TEST(sim->compute_threads == 1u);
  BOOST_TEST(cfg->federation("big")->num_supernodes == 100u);
  BOOST_TEST(cfg->federation("nope").error().what.find("known: sim, big") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bad_files_name_file_line_and_key) {
  app_dir syntax{"[app]\nname = \"x\"\nlibrary = \n"};
  auto a = load_app_config(syntax.path);
  BOOST_REQUIRE(!a);
  BOOST_TEST(a.error().what.find("stamen.toml") != std::string::npos, a.error().what);
  BOOST_TEST(a.error().what.find("3") != std::string::npos);

  app_dir unknown{std::string{good} + "\n[federations.sim.extra]\n"};
  auto b = load_app_config(unknown.path);
  BOOST_REQUIRE(!b);

  app_dir typo{"[app]\nname = \"x\"\nlibrary = \"y\"\nlibary = \"z\"\n"};
  auto c = load_app_config(typo.path);
  BOOST_REQUIRE(!c);
  BOOST_TEST(c.error().what.find("unknown key 'libary' in [app]") != std::string::npos,
             c.error().what);

  app_dir negative{"[app]\nname = \"x\"\nlibrary = \"y\"\n[federations.s]\noptions.num-supernodes = 0\n"};
  auto e = load_app_config(negative.path);
  BOOST_REQUIRE(!e);
  BOOST_TEST(e.error().what.find("'num-supernodes' must be a positive integer") != std::string::npos,
             e.error().what);

  // [app] files: paths a bundle carries, a list of strings.
  app_dir files{"[app]\nname = \"x\"\nlibrary = \"y\"\nfiles = [\"data\", \"labels.txt\"]\n"};
  auto f = load_app_config(files.path);
  BOOST_REQUIRE_MESSAGE(f.has_value(), (f ? std::string{} : f.error().what));
  BOOST_TEST((f->files == std::vector<std::string>{"data", "labels.txt"}));
  app_dir not_a_list{"[app]\nname = \"x\"\nlibrary = \"y\"\nfiles = \"data\"\n"};
  auto g = load_app_config(not_a_list.path);
  BOOST_REQUIRE(!g);
  BOOST_TEST(g.error().what.find("[app] files must be a list of paths") != std::string::npos, g.error().what);
  BOOST_TEST(g.error().what.find(" 4 | files = \"data\"") != std::string::npos, g.error().what);

  auto missing = load_app_config("/nonexistent/app");
  BOOST_REQUIRE(!missing);
  BOOST_TEST(missing.error().what.find("does not exist") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(overrides_are_typed_and_all_or_nothing) {
  app_dir d{good};
  auto cfg = *load_app_config(d.path);
  auto rc = cfg.run_config;
  BOOST_REQUIRE(apply_run_config_overrides(rc, "zeta=7 alpha=2 name='a b' flags=[false]").has_value());
  BOOST_TEST(std::get<int64_t>(*rc.get("zeta")) == 7);
  BOOST_TEST(std::get<double>(*rc.get("alpha")) == 2.0);  // an integer widens to a float
  BOOST_TEST(std::get<std::string>(*rc.get("name")) == "a b");
  BOOST_TEST(std::get<std::vector<bool>>(*rc.get("flags")) == std::vector<bool>{false});

  auto before = rc;
  auto bad = apply_run_config_overrides(rc, "zeta=8 alpha=fast");
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.error().what.find("'alpha' expects a float, got a string") != std::string::npos,
             bad.error().what);
  BOOST_TEST((rc == before));  // zeta=8 was not applied either
  auto unknown = apply_run_config_overrides(rc, "zetta=1");
  BOOST_REQUIRE(!unknown);
  BOOST_TEST(unknown.error().what.find("unknown run config key 'zetta'") != std::string::npos);
  auto narrowing = apply_run_config_overrides(rc, "zeta=1.5");
  BOOST_REQUIRE(!narrowing);
  BOOST_TEST(narrowing.error().what.find("'zeta' expects an integer, got a float") !=
                 std::string::npos, narrowing.error().what);

  std::ofstream(d.path / "over.toml") << "zeta = 11\n[nested]\ninner = 4\n";
  BOOST_REQUIRE(apply_run_config_overrides(rc, (d.path / "over.toml").string()).has_value());
  BOOST_TEST(std::get<int64_t>(*rc.get("zeta")) == 11);
  BOOST_TEST(std::get<int64_t>(*rc.get("nested.inner")) == 4);
  BOOST_TEST(!apply_run_config_overrides(rc, "just-words"));
}

BOOST_AUTO_TEST_CASE(key_values_without_schema) {
  auto kv = parse_key_values("partition-id=0 num-partitions=10 name=cifar10 r=0.5");
  BOOST_REQUIRE(kv.has_value());
  BOOST_TEST(std::get<int64_t>(*kv->get("num-partitions")) == 10);
  BOOST_TEST(std::get<std::string>(*kv->get("name")) == "cifar10");
  BOOST_TEST(std::get<double>(*kv->get("r")) == 0.5);
  BOOST_TEST(!parse_key_values("novalue"));
}

BOOST_AUTO_TEST_CASE(cluster_federations_and_their_overrides) {
  app_dir d{std::string{good} + R"(
[federations.cluster]
address = "10.0.0.1:9092"
root-certificates = "pki/ca.pem"
certificate = "/etc/stamen/client.pem"
private-key = "pki/client.key"
superlink-name = "superlink.example"
superlink-key = "pki/superlink.pem"
)"};
  auto cfg = load_app_config(d.path);
  if (!cfg) BOOST_FAIL(cfg.error().what);
  auto fed = cfg->federation("cluster");
  BOOST_REQUIRE(fed);
  BOOST_TEST(*fed->address == "10.0.0.1:9092");
  BOOST_TEST(fed->superlink_name == "superlink.example");
  BOOST_TEST(fed->superlink_key == (d.path / "pki/superlink.pem").string());
  BOOST_REQUIRE(fed->tls.has_value());
  BOOST_TEST(fed->tls->ca == (d.path / "pki/ca.pem").string());  // relative to the app
  BOOST_TEST(fed->tls->certificate == "/etc/stamen/client.pem");

  BOOST_REQUIRE(apply_federation_overrides(*fed, "address=127.0.0.1:9999 private-key=/k.pem"));
  BOOST_TEST(*fed->address == "127.0.0.1:9999");
  BOOST_TEST(fed->tls->key == "/k.pem");
  auto unknown = apply_federation_overrides(*fed, "adress=x:1");
  BOOST_REQUIRE(!unknown);
  BOOST_TEST(unknown.error().what.find("unknown key 'adress'") != std::string::npos);
  auto typed = apply_federation_overrides(*fed, "num-supernodes=0");
  BOOST_REQUIRE(!typed);
  BOOST_TEST(typed.error().what.find("positive integer") != std::string::npos);
  BOOST_TEST(*fed->address == "127.0.0.1:9999");  // a failed override changes nothing

  // TLS is all three files or none, and needs a superlink.
  app_dir partial{std::string{good} + R"(
[federations.half]
address = "h:1"
certificate = "c.pem"
)"};
  auto p = load_app_config(partial.path);
  BOOST_REQUIRE(!p);
  BOOST_TEST(p.error().what.find("needs all of root-certificates, certificate and private-key") !=
             std::string::npos);
  auto sim = load_app_config(d.path)->federation("sim");
  auto no_address = apply_federation_overrides(*sim, "root-certificates=a certificate=b private-key=c");
  BOOST_REQUIRE(!no_address);
  BOOST_TEST(no_address.error().what.find("without an address") != std::string::npos);
  // The superlink's name and key are checked on a TLS link only.
  auto plain = apply_federation_overrides(*sim, "address=h:1 superlink-name=x");
  BOOST_REQUIRE(!plain);
  BOOST_TEST(plain.error().what.find("superlink-name and superlink-key need TLS") != std::string::npos);
  app_dir named{std::string{good} + R"(
[federations.named]
address = "h:1"
superlink-name = "x"
)"};
  auto n = load_app_config(named.path);
  BOOST_REQUIRE(!n);
  BOOST_TEST(n.error().what.find("'superlink-name' needs TLS") != std::string::npos, n.error().what);
}

BOOST_AUTO_TEST_CASE(fault_plans) {
  app_dir d{std::string{good} + R"(
[faults]
seed = 7
[[faults.rule]]
action = "crash"
nodes = [3, 7]
rounds = [2]
phase = "train"
when = "during"
delay-ms = 500
[[faults.rule]]
action = "drop"
fraction = 0.2
probability = 0.3
target = "reply"
[[faults.rule]]
action = "partition"
nodes = "all"
rounds = "every"
)"};
  auto cfg = load_app_config(d.path);
  BOOST_REQUIRE_MESSAGE(cfg.has_value(), (cfg ? std::string{} : cfg.error().what));
  auto& plan = cfg->faults;
  BOOST_TEST(plan.seed == 7u);
  BOOST_REQUIRE(plan.rules.size() == 3u);
  BOOST_TEST((plan.rules[0].action == fault_action::crash));
  BOOST_TEST((plan.rules[0].when == crash_point::during));
  BOOST_TEST(plan.rules[0].delay_ms == 500.0);
  BOOST_TEST((plan.rules[0].nodes == std::vector<int64_t>{3, 7}));
  BOOST_TEST(plan.rules[1].fraction == 0.2);
  BOOST_TEST((plan.rules[1].target == drop_target::reply));
  BOOST_TEST(plan.rules[2].all);
  BOOST_TEST(plan.rules[2].rounds.empty());

  auto expect_error = [](const std::string& rules, const std::string& needle) {
    app_dir bad{std::string{"[app]\nname = \"x\"\nlibrary = \"y\"\n[faults]\n"} + rules};
    auto r = load_app_config(bad.path);
    BOOST_REQUIRE_MESSAGE(!r.has_value(), "accepted: " << rules);
    BOOST_TEST(r.error().what.find(needle) != std::string::npos, r.error().what);
  };
  expect_error("[[faults.rule]]\naction = \"explode\"\nnodes = [1]\n",
               "'action' must be one of: crash, drop, delay");
  expect_error("[[faults.rule]]\naction = \"drop\"\n", "exactly one of 'nodes' and 'fraction'");
  expect_error("[[faults.rule]]\naction = \"delay\"\nnodes = [1]\n", "needs delay-ms > 0");
  expect_error("[[faults.rule]]\naction = \"drop\"\nnodes = [1]\nprobability = 2\n",
               "'probability' must lie in");
  expect_error("[[faults.rule]]\naction = \"drop\"\nnodes = [1]\nwhen = \"later\"\n",
               "'when' must be one of");
  expect_error("sede = 1\n", "unknown key 'sede' in [faults]");
  expect_error("[[faults.rule]]\naction = \"restart\"\nnodes = [1]\nwhen = \"during\"\n",
               "a 'restart' rule takes when = \"before\" or \"after\"");

  expect_error("[[faults.rule]]\naction = \"poison\"\nnodes = [1]\n", "a 'poison' rule needs 'how'");
  expect_error("[[faults.rule]]\naction = \"poison\"\nnodes = [1]\nhow = \"flip\"\n",
               "'how' must be one of: sign-flip, scale, gaussian, zero, random");
  expect_error("[[faults.rule]]\naction = \"drop\"\nnodes = [1]\nfactor = 5\n",
               "'factor' belongs to a 'poison' rule");
  expect_error("[[faults.rule]]\naction = \"poison\"\nnodes = [1]\nhow = \"zero\"\nnum-examples = 0\n",
               "'num-examples' must be a positive integer");
  expect_error("[[faults.rule]]\naction = \"poison\"\nnodes = [1]\nhow = \"zero\"\nphase = \"evaluate\"\n",
               "a 'poison' rule changes train replies");
  {
    app_dir ok{"[app]\nname = \"x\"\nlibrary = \"y\"\n[faults]\n[[faults.rule]]\naction = \"poison\"\n"
               "nodes = [0, 2]\nhow = \"sign-flip\"\nfactor = 5\nnum-examples = 9000\n"};
    auto r = load_app_config(ok.path);
    BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? std::string{} : r.error().what));
    auto& rule = r->faults.rules.at(0);
    BOOST_TEST((rule.action == fault_action::poison));
    BOOST_TEST((rule.poison.how == poison_kind::sign_flip));
    BOOST_TEST(rule.poison.factor == 5.0);
    BOOST_TEST(*rule.poison.num_examples == 9000);
    BOOST_TEST((rule.phase == fault_phase::train));
  }

  std::ofstream(d.path / "plan.toml") << "[faults]\nseed = 3\n[[faults.rule]]\naction = \"corrupt\"\nnodes = [0]\n";
  auto plan2 = load_fault_plan(d.path / "plan.toml");
  BOOST_REQUIRE(plan2.has_value());
  BOOST_TEST((plan2->rules.at(0).action == fault_action::corrupt));
  BOOST_TEST(!load_fault_plan(d.path / "missing.toml"));
}

BOOST_AUTO_TEST_CASE(domains_declared_beside_defaults_are_checked) {
  app_dir d{R"([app]
name = "demo"
library = "demo_app"

[app.config]
batch-size = { default = 32, min = 1 }
lr = { default = 0.01, min = 0.0, exclusive-min = true }
fraction = { default = 0.5, min = 0.0, max = 1.0 }
dataset = { default = "mnist", choices = ["mnist", "cifar10"] }
plain = 3
nested.inner = 4
)"};
  auto cfg = load_app_config(d.path);
  BOOST_REQUIRE_MESSAGE(cfg.has_value(), (cfg ? std::string{} : cfg.error().what));
  // Defaults become the run config; domains are kept beside it.
  BOOST_TEST(std::get<int64_t>(*cfg->run_config.get("batch-size")) == 32);
  BOOST_TEST(std::get<std::string>(*cfg->run_config.get("dataset")) == "mnist");
  BOOST_TEST(std::get<int64_t>(*cfg->run_config.get("nested.inner")) == 4);
  BOOST_TEST(cfg->domains.size() == 4u);
  BOOST_TEST(!cfg->domains.contains("plain"));
  BOOST_TEST(check_run_config(cfg->run_config, cfg->domains).has_value());

  auto refused = [&](const std::string& override_spec, const std::string& needle) {
    auto rc = cfg->run_config;
    BOOST_REQUIRE(apply_run_config_overrides(rc, override_spec).has_value());
    auto ok = check_run_config(rc, cfg->domains);
    BOOST_REQUIRE_MESSAGE(!ok.has_value(), "accepted: " << override_spec);
    BOOST_TEST(ok.error().what.find(needle) != std::string::npos, ok.error().what);
  };
  refused("batch-size=0", "run config key 'batch-size' = 0 is out of its domain: >= 1");
  refused("lr=0", "'lr' = 0.0 is out of its domain: > 0");
  refused("lr=-1.5", "'lr' = -1.5 is out of its domain: > 0");
  refused("fraction=1.5", "'fraction' = 1.5 is out of its domain: >= 0 and <= 1");
  refused("dataset=imagenet", "'dataset' = 'imagenet' is out of its domain: one of 'mnist', 'cifar10'");
  for (auto* fine : {"batch-size=1", "lr=1e-9", "fraction=1.0", "fraction=0", "dataset=cifar10"}) {
    auto rc = cfg->run_config;
    BOOST_REQUIRE(apply_run_config_overrides(rc, fine).has_value());
    BOOST_TEST(check_run_config(rc, cfg->domains).has_value(), fine);
  }

  auto expect_error = [](const std::string& config, const std::string& needle) {
    app_dir bad{"[app]\nname = \"x\"\nlibrary = \"y\"\n[app.config]\n" + config};
    auto r = load_app_config(bad.path);
    BOOST_REQUIRE_MESSAGE(!r.has_value(), "accepted: " << config);
    BOOST_TEST(r.error().what.find(needle) != std::string::npos, r.error().what);
  };
  // A default outside its own domain is caught where it is written.
  expect_error("batch-size = { default = 0, min = 1 }\n",
               "the default of 'batch-size' is out of its domain (>= 1)");
  expect_error("batch-size = { default = 0, min = 1 }\n", "stamen.toml");
  expect_error("k = { default = 1, minimum = 0 }\n", "unknown key 'minimum' in the domain of 'k'");
  expect_error("k = { default = \"a\", min = 0 }\n", "'k' has bounds but its default is not a number");
  expect_error("k = { default = 1, min = \"zero\" }\n", "'min' of 'k' must be a number");
  expect_error("k = { default = 1, exclusive-min = 1 }\n", "'exclusive-min' of 'k' must be true or false");
  expect_error("k = { default = \"a\", choices = [] }\n", "'choices' of 'k' must be a non-empty list");
}

BOOST_AUTO_TEST_CASE(optional_keys_have_no_value_until_given) {
  app_dir d{R"([app]
name = "demo"
library = "demo_app"

[app.config]
eta = { optional = true, min = 0.0, exclusive-min = true }
mode = { optional = true, choices = ["a", "b"] }
lr = 0.1
)"};
  auto cfg = load_app_config(d.path);
  BOOST_REQUIRE_MESSAGE(cfg.has_value(), (cfg ? std::string{} : cfg.error().what));
  BOOST_TEST(!cfg->run_config.contains("eta"));
  BOOST_TEST(cfg->domains.get("eta")->optional);

  auto rc = cfg->run_config;
  // Without the domains an optional key is unknown; with them it may be given.
  BOOST_TEST(!apply_run_config_overrides(rc, "eta=0.5").has_value());
  BOOST_REQUIRE(apply_run_config_overrides(rc, "eta=0.5 mode=b", &cfg->domains).has_value());
  BOOST_TEST(config_double(rc, "eta") == 0.5);
  BOOST_TEST(check_run_config(rc, cfg->domains).has_value());

  auto bad_type = cfg->run_config;
  auto typed = apply_run_config_overrides(bad_type, "eta=fast", &cfg->domains);
  BOOST_REQUIRE(!typed.has_value());
  BOOST_TEST(typed.error().what.find("run config key 'eta' expects a number") != std::string::npos,
             typed.error().what);
  auto out = cfg->run_config;
  BOOST_REQUIRE(apply_run_config_overrides(out, "eta=0", &cfg->domains).has_value());
  auto refused = check_run_config(out, cfg->domains);
  BOOST_REQUIRE(!refused.has_value());
  BOOST_TEST(refused.error().what.find("'eta' = 0 is out of its domain: > 0") != std::string::npos,
             refused.error().what);
  auto unknown = apply_run_config_overrides(out, "etaa=1", &cfg->domains);
  BOOST_REQUIRE(!unknown.has_value());
  BOOST_TEST(unknown.error().what.find("lr, eta, mode") != std::string::npos, unknown.error().what);

  app_dir both{"[app]\nname = \"x\"\nlibrary = \"y\"\n[app.config]\nk = { optional = true, default = 1 }\n"};
  auto r = load_app_config(both.path);
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST(r.error().what.find("'k' takes either a default or optional = true") != std::string::npos,
             r.error().what);
}

BOOST_AUTO_TEST_CASE(fault_plans_must_fit_the_federation) {
  fault_plan plan;
  fault_rule r;
  r.action = fault_action::crash;
  r.nodes = {0, 9};
  plan.rules.push_back(r);
  federation_config ten;
  ten.name = "ten";
  ten.num_supernodes = 10;
  BOOST_TEST(check_fault_plan(plan, ten).has_value());
  federation_config three = ten;
  three.num_supernodes = 3;
  auto ok = check_fault_plan(plan, three);
  BOOST_REQUIRE(!ok.has_value());
  BOOST_TEST(ok.error().what.find("fault rule 1 (crash) names node 9, but federation 'ten' has 3 "
                                  "SuperNodes (0 to 2)") != std::string::npos,
             ok.error().what);
}

BOOST_AUTO_TEST_SUITE_END()
