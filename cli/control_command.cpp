#include "cli/control_command.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <ctime>
#include <iostream>

#include "actors/federation.hpp"
#include "actors/node_identity.hpp"
#include "actors/run_client.hpp"
#include "actors/transport.hpp"
#include "config/app_config.hpp"
#include "runtime/logger.hpp"

namespace stamen {

namespace {

std::string clock_time(double unix_s) {
  if (unix_s <= 0) return "-";
  auto t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  localtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%d %H:%M:%S", &tm);
  return out;
}

// `stamen ls` as a table, newest last, as `flwr ls` prints it.
void print_runs(const nlohmann::json& runs) {
  std::printf("%-20s %-14s %-20s %6s  %-19s %9s  %s\n", "RUN ID", "APP", "STATUS", "ROUNDS", "SUBMITTED",
              "ELAPSED", "LAST METRICS");
  for (auto& r : runs) {
    double start = r.value("started_at", 0.0), end = r.value("ended_at", 0.0);
    std::string elapsed = "-";
    if (start > 0) {
      char buf[32];
      auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
      std::snprintf(buf, sizeof buf, "%.1fs", (end > 0 ? end : now) - start);
      elapsed = buf;
    }
    std::printf("%-20s %-14s %-20s %6d  %-19s %9s  %s\n", std::to_string(r.value("run_id", uint64_t{0})).c_str(),
                r.value("app", std::string{}).c_str(), r.value("status", std::string{}).c_str(),
                r.value("rounds", 0), clock_time(r.value("submitted_at", 0.0)).c_str(), elapsed.c_str(),
                r.value("last_metrics", nlohmann::json::object()).dump().c_str());
  }
}

}  // namespace

expected<link_options> submitter_link(const federation_config& fed) {
  link_options link;
  link.tls = fed.tls;
  link.superlink_name = fed.superlink_name;
  if (!fed.superlink_key.empty()) {
    auto fp = resolve_key(fed.superlink_key);
    if (!fp) return fail(errc::config_error, "federation '" + fed.name + "' superlink-key: " + fp.error().what);
    link.superlink_key = *fp;
  }
  return link;
}

expected<control_request> superlink_of(const std::string& app_dir, const std::string& federation,
                                       const std::vector<std::string>& federation_config,
                                       const std::string& verb) {
  auto cfg = load_app_config(app_dir);
  if (!cfg) return cfg.error();
  auto fed = cfg->federation(federation);
  if (!fed) return fed.error();
  for (auto& spec : federation_config)
    if (auto ok = apply_federation_overrides(*fed, spec); !ok) return ok.error();
  if (!fed->address)
    return fail(errc::config_error, "federation '" + fed->name + "' is a simulation; `stamen " + verb +
                                        "` talks to a superlink (a federation with an address)");
  auto addr = parse_address(*fed->address, "federation '" + fed->name + "' address");
  if (!addr) return addr.error();
  if (fed->tls)
    if (auto ok = check_tls_files(*fed->tls); !ok) return ok.error();
  auto link = submitter_link(*fed);
  if (!link) return link.error();
  control_request req;
  req.host = addr->first;
  req.port = addr->second;
  req.link = std::move(*link);
  req.verb = verb;
  return req;
}

expected<std::string> fetch_run_result(const control_request& superlink, uint64_t run_id) {
  auto req = superlink;
  req.verb = "result";
  req.run_id = run_id;
  actor_runtime rt{1, [&](caf::actor_system_config& c) { configure_links(c, req.link.tls); }};
  auto out = control_run(*rt.sys, req, [](const std::string&) {});
  if (!out.ok) return fail(errc::runtime_error, out.text);
  return out.text;
}

nlohmann::json cluster_result_json(const std::string& text, uint64_t run_id) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) doc = nlohmann::json{{"result", text}};
  doc["faults"] = nlohmann::json::array();
  doc["run_id"] = run_id;
  return doc;
}

int run_control(const control_command& cmd) {
  logger log{std::clog};
  auto resolved = superlink_of(cmd.app_dir, cmd.federation, cmd.federation_config, cmd.verb);
  if (!resolved) {
    std::cerr << "stamen: " << resolved.error().what << '\n';
    return 2;
  }
  auto& req = *resolved;
  req.run_id = cmd.run_id;
  req.follow = cmd.follow;
  req.pull_dir = cmd.dir.empty() ? "run-" + std::to_string(cmd.run_id) : cmd.dir;
  if (cmd.verb == "pull") {
    std::error_code ec;
    std::filesystem::create_directories(req.pull_dir, ec);
  }
  actor_runtime rt{1, [&](caf::actor_system_config& c) { configure_links(c, req.link.tls); }};
  auto out = control_run(*rt.sys, req, [&](const std::string& line) {
    // A run's log goes to stdout (it is what `stamen log` prints); what
    // `pull` did goes to the log.
    if (cmd.verb == "log") std::cout << line << '\n' << std::flush;
    else log.info(line);
  });
  if (cmd.verb == "ls") {
    if (!out.ok) {
      log.error(out.text);
      return 1;
    }
    auto runs = nlohmann::json::parse(out.text, nullptr, false);
    if (cmd.json) std::cout << runs.dump(2) << std::endl;
    else print_runs(runs);
    return 0;
  }
  if (cmd.verb == "log") {
    // The log's last word: how the run ended (or where it stands).
    auto rec = nlohmann::json::parse(out.text, nullptr, false);
    if (!rec.is_discarded() && rec.is_object() && rec.contains("status"))
      log.info("run " + std::to_string(cmd.run_id) + ": " + rec["status"].get<std::string>());
    else if (!out.ok)
      log.error(out.text);
    return out.ok ? 0 : 1;
  }
  if (!out.ok) {
    log.error(out.text);
    return 1;
  }
  log.info(cmd.verb == "pull" ? "pulled run " + std::to_string(cmd.run_id) + " into " + req.pull_dir + ": " + out.text
                              : out.text);
  return 0;
}

}  // namespace stamen
