#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <caf/actor_system.hpp>

#include "actors/link_options.hpp"
#include "config/app_bundle.hpp"
#include "messages/codec.hpp"
#include "messages/config_record.hpp"

namespace stamen {

/// A run for a superlink to execute (what `stamen run` sends for a cluster
/// federation).
struct run_submission {
  std::string host;
  uint16_t port = 9092;
  std::string library;      ///< the app's library: lib<library>.so in the bundle
  app_bundle bundle;         ///< the app, sent when the superlink asks for it
  config_record run_config;  ///< after --run-config overrides
  link_options link;         ///< with TLS, also proves the submitter's key (for bundles)
  codec_options codec;
};

struct run_outcome {
  bool ok = false;
  std::string text;  ///< the strategy's result as JSON, or why the run failed
};

/// Submits a run and blocks until it ends. Each log line of the run (the
/// superlink's ServerApp, strategy and grid) is handed to `on_log` as it
/// arrives. When the superlink cannot be reached, refuses the run or goes
/// silent, the outcome is not ok and says so.
run_outcome submit_run(caf::actor_system& sys, const run_submission& run,
                                 std::function<void(const std::string&)> on_log);

}  // namespace stamen
