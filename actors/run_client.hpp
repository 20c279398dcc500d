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
  std::string app;           ///< the app's name, for `stamen ls`
  std::string library;      ///< the app's library: lib<library>.so in the bundle
  app_bundle bundle;         ///< the app, sent when the superlink asks for it
  config_record run_config;  ///< after --run-config overrides
  link_options link;         ///< with TLS, also proves the submitter's key (for bundles)
  codec_options codec;
  /// The run starts once this many nodes are connected (0: at once).
  uint64_t min_nodes = 0;
  /// Return once the superlink has accepted the run (its id known).
  bool detach = false;
  /// Gets the run's live status line as the superlink sends it ("" once
  /// the run ends); unset: the superlink sends none.
  std::function<void(const std::string&)> on_progress;
};

struct run_outcome {
  bool ok = false;
  std::string text;     ///< the strategy's result as JSON, or why the run failed
  uint64_t run_id = 0;  ///< once the superlink accepted the run
};

/// Submits a run and blocks until it ends (or, detached, until it is
/// accepted). `on_accepted` gets the run's id as soon as the superlink
/// gives it; each log line of the run (its ServerApp and strategy) is
/// handed to `on_log` as it arrives. When the superlink cannot be reached,
/// refuses the run or goes silent, the outcome is not ok and says so.
run_outcome submit_run(caf::actor_system& sys, const run_submission& run,
                       std::function<void(const std::string&)> on_log,
                       std::function<void(uint64_t)> on_accepted = {});

/// `stamen ls`, `log`, `stop` and `pull`: one request to a superlink.
struct control_request {
  std::string host;
  uint16_t port = 9092;
  link_options link;     ///< with TLS, also proves the client's key
  std::string verb;      ///< ls, log, stop, pull or result
  uint64_t run_id = 0;
  bool follow = false;   ///< log: stream until the run ends
  std::string pull_dir;  ///< pull: where the run's files go
};

/// Sends a control request and blocks until it is answered: `text` is the
/// answer (JSON for ls; the run's record for log), or why it failed. Log
/// lines go to `on_log`; pulled files are written under `pull_dir`, their
/// paths checked first.
run_outcome control_run(caf::actor_system& sys, const control_request& req,
                        std::function<void(const std::string&)> on_log);

}  // namespace stamen
