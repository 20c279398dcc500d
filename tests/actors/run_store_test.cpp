// The superlink's durable state on its own: what is kept survives a reopen,
// and a file it cannot trust is refused, named and left as it is.
#include <boost/test/unit_test.hpp>
#include <SQLiteCpp/SQLiteCpp.h>

#include <unistd.h>

#include <fstream>

#include "actors/run_store.hpp"
#include "tests/support/shell.hpp"

namespace fs = std::filesystem;
using namespace stamen;

namespace {

struct store_dir {
  fs::path dir;
  store_dir() {
    auto name = boost::unit_test::framework::current_test_case().p_name.get();
    dir = fs::temp_directory_path() / ("stamen-store-" + std::to_string(getpid())) / name;
    fs::remove_all(dir);
  }
  ~store_dir() { fs::remove_all(dir); }
};

run_record sample(uint64_t id) {
  run_record r;
  r.id = id;
  r.app = "gated";
  r.library = "stamen_app_gated";
  r.bundle = std::string(64, 'a');
  std::string cfg = "encoded run config";
  r.run_config = buffer::copy_of(cfg.data(), cfg.size());
  r.run_config_text = "num-server-rounds: 2";
  r.submitted_at = unix_now();
  return r;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(run_store_suite, store_dir)

BOOST_AUTO_TEST_CASE(runs_logs_and_rounds_survive_a_reopen) {
  {
    auto store = run_store::open(dir);
    BOOST_REQUIRE_MESSAGE(store.has_value(), (store ? std::string{} : store.error().what));
    auto& s = **store;
    BOOST_TEST(static_cast<bool>(s.add(sample(7))));
    BOOST_TEST(static_cast<bool>(s.add(sample(9))));
    BOOST_TEST(static_cast<bool>(s.set_status(7, run_status::starting)));
    BOOST_TEST(static_cast<bool>(s.add_round(7, 1, "evaluate", "{\"eval_loss\":0.5}")));
    BOOST_TEST(static_cast<bool>(s.add_round(7, 2, "evaluate", "{\"eval_loss\":0.25}")));
    for (auto* line : {"one", "two", "three"}) BOOST_TEST(static_cast<bool>(s.append_log(7, line)));
    BOOST_TEST(static_cast<bool>(s.set_status(7, run_status::completed)));
    BOOST_TEST(static_cast<bool>(s.set_result(7, "{\"rounds\":[]}")));
    BOOST_TEST(static_cast<bool>(s.set_status(9, run_status::failed, "no nodes")));
    BOOST_TEST(static_cast<bool>(s.node_seen({42}, "127.0.0.1:1", "")));
    BOOST_TEST(static_cast<bool>(s.node_seen({42, 43}, "127.0.0.1:2", "")));
  }
  auto store = run_store::open(dir);
  BOOST_REQUIRE(store.has_value());
  auto runs = (*store)->runs();
  BOOST_REQUIRE(runs.has_value());
  BOOST_REQUIRE_EQUAL(runs->size(), 2u);
  auto& r = (*runs)[0];
  BOOST_TEST(r.id == 7u);
  BOOST_TEST(r.status == "finished:completed");
  BOOST_TEST(r.rounds == 2);
  BOOST_TEST(r.last_metrics == "{\"eval_loss\":0.25}");
  BOOST_TEST(r.result == "{\"rounds\":[]}");
  BOOST_TEST(r.started_at > 0);
  BOOST_TEST(r.ended_at >= r.started_at);
  BOOST_TEST(std::string(reinterpret_cast<const char*>(r.run_config.data()), r.run_config.size()) ==
             "encoded run config");
  BOOST_TEST((*runs)[1].reason == "no nodes");
  auto log = (*store)->log(7);
  BOOST_TEST((*log == std::vector<std::string>{"one", "two", "three"}));
  BOOST_TEST((*(*store)->log(7, 2) == std::vector<std::string>{"three"}));
  BOOST_TEST(!(*(*store)->run(8)).has_value());
  // Node 42 joined twice (the second time with node 43, over one link).
  auto nodes = (*store)->nodes();
  BOOST_REQUIRE(nodes.has_value());
  BOOST_REQUIRE_EQUAL(nodes->size(), 2u);
  BOOST_TEST((*nodes)[0].find("\"joins\":2") != std::string::npos, (*nodes)[0]);
  BOOST_TEST((*nodes)[0].find("127.0.0.1:2") != std::string::npos, (*nodes)[0]);
  BOOST_TEST((*nodes)[1].find("\"node_id\":43") != std::string::npos, (*nodes)[1]);
}

BOOST_AUTO_TEST_CASE(a_file_that_is_not_a_database_is_refused_and_left_alone) {
  fs::create_directories(dir);
  for (std::string junk : {std::string("this is not SQLite, it is a text file that happens to be here\n"),
                           std::string("SQLite format 3\0truncated", 25)}) {
    { std::ofstream{dir / "state.db", std::ios::binary} << junk; }
    auto store = run_store::open(dir);
    BOOST_REQUIRE(!store.has_value());
    BOOST_TEST(store.error().what.find("state.db' is unreadable") != std::string::npos, store.error().what);
    BOOST_TEST(store.error().what.find("left as it is") != std::string::npos);
    BOOST_TEST(stamen::test::slurp(dir / "state.db") == junk);
  }
}

BOOST_AUTO_TEST_CASE(a_database_from_a_newer_version_is_refused_and_left_alone) {
  {
    auto store = run_store::open(dir);
    BOOST_REQUIRE(store.has_value());
    BOOST_TEST(static_cast<bool>((*store)->add(sample(1))));
  }
  {
    SQLite::Database db{(dir / "state.db").string(), SQLite::OPEN_READWRITE};
    db.exec("PRAGMA user_version = 99");
  }
  auto store = run_store::open(dir);
  BOOST_REQUIRE(!store.has_value());
  BOOST_TEST(store.error().what.find("schema version 99, newer than this stamen's " +
                                   std::to_string(run_store::schema_version)) != std::string::npos,
             store.error().what);
  SQLite::Database db{(dir / "state.db").string(), SQLite::OPEN_READONLY};
  BOOST_TEST(db.execAndGet("PRAGMA user_version").getInt() == 99);
  BOOST_TEST(db.execAndGet("SELECT count(*) FROM runs").getInt() == 1);
}

// A state.db of the first schema (before runs kept min_nodes) is migrated
// in place: its runs are kept and read with min_nodes 0.
BOOST_AUTO_TEST_CASE(a_database_of_schema_1_is_migrated_and_keeps_its_runs) {
  fs::create_directories(dir);
  {
    SQLite::Database db{(dir / "state.db").string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE};
    db.exec("CREATE TABLE runs(id INTEGER PRIMARY KEY, app TEXT NOT NULL, library TEXT NOT NULL,"
            " bundle TEXT NOT NULL, run_config BLOB, run_config_text TEXT NOT NULL, status TEXT NOT NULL,"
            " reason TEXT NOT NULL DEFAULT '', submitted_at REAL NOT NULL, started_at REAL NOT NULL DEFAULT 0,"
            " ended_at REAL NOT NULL DEFAULT 0, rounds INTEGER NOT NULL DEFAULT 0,"
            " last_metrics TEXT NOT NULL DEFAULT '{}', result TEXT NOT NULL DEFAULT '');"
            "CREATE TABLE logs(run_id INTEGER NOT NULL, seq INTEGER NOT NULL, line TEXT NOT NULL,"
            " PRIMARY KEY(run_id, seq));"
            "CREATE TABLE rounds(run_id INTEGER NOT NULL, round INTEGER NOT NULL, phase TEXT NOT NULL,"
            " metrics TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY(run_id, round, phase));"
            "CREATE TABLE nodes(node_id INTEGER PRIMARY KEY, address TEXT NOT NULL, key TEXT NOT NULL,"
            " first_seen REAL NOT NULL, last_seen REAL NOT NULL, joins INTEGER NOT NULL);"
            "INSERT INTO runs(id, app, library, bundle, run_config_text, status, submitted_at)"
            " VALUES(5, 'old', 'stamen_app_old', 'b', '', 'pending', 1);"
            "PRAGMA user_version = 1;");
  }
  auto store = run_store::open(dir);
  BOOST_REQUIRE_MESSAGE(store.has_value(), (store ? std::string{} : store.error().what));
  auto old = (*store)->run(5);
  BOOST_REQUIRE(old.has_value());
  BOOST_REQUIRE(old->has_value());
  BOOST_TEST((*old)->app == "old");
  BOOST_TEST((*old)->min_nodes == 0u);
  auto fresh = sample(6);
  fresh.min_nodes = 3000;
  BOOST_TEST(static_cast<bool>((*store)->add(fresh)));
  BOOST_TEST((*(*store)->run(6))->min_nodes == 3000u);
}

BOOST_AUTO_TEST_SUITE_END()
