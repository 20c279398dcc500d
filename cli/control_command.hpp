#pragma once

// `stamen ls`, `stamen log`, `stamen stop` and `stamen pull`: Flower's verbs
// for the runs of a superlink, which the app's federation names.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/run_client.hpp"
#include "config/app_config.hpp"
#include "messages/expected.hpp"

namespace stamen {

struct control_command {
  std::string verb;      ///< ls, log, stop or pull
  uint64_t run_id = 0;   ///< all but ls
  std::string app_dir = ".";
  std::string federation;
  std::vector<std::string> federation_config;
  bool follow = false;   ///< log
  std::string dir;       ///< pull: default ./run-<id>
  bool json = false;     ///< ls
};

/// How a submitter (`stamen run`, `ls`, `log`, ...) reaches `fed`'s
/// superlink: its TLS files, and the name and pinned key the superlink's
/// certificate must have (a PEM file's key as its fingerprint).
expected<link_options> submitter_link(const federation_config& fed);

/// Where the app's federation (with overrides) says its superlink is, as a
/// request with that address and TLS files; fails with what to fix for a
/// simulation federation, a bad address or unusable TLS files.
expected<control_request> superlink_of(const std::string& app_dir, const std::string& federation,
                                       const std::vector<std::string>& federation_config,
                                       const std::string& verb);

/// A finished run's result (the JSON `stamen run --format json` printed),
/// as its superlink kept it.
expected<std::string> fetch_run_result(const control_request& superlink, uint64_t run_id);

/// A superlink's result text as `stamen run --format json` prints it: the
/// strategy's JSON (or {"result": text} when it is none) with the run's id
/// and, as a simulation's has, its faults (none are injected on a cluster).
nlohmann::json cluster_result_json(const std::string& text, uint64_t run_id);

/// Runs the verb against the federation's superlink; returns the exit code
/// (0 done; 1 the superlink said no or the followed run did not complete;
/// 2 a bad command line or config).
int run_control(const control_command& cmd);

}  // namespace stamen
