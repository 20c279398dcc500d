#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "messages/context.hpp"
#include "runtime/client_app.hpp"
#include "runtime/server_app.hpp"

namespace stamen {

/// What an app's shared library hands the runtime. The same components run
/// in a simulation and on a cluster: the app never knows which.
struct app_components {
  /// The ServerApp.
  server_app server;
  /// Builds the ClientApp of one SuperNode; called once per node, with the
  /// node's context (node_config holds partition-id and num-partitions in a
  /// simulation). A node's model and device live in what this returns.
  std::function<std::shared_ptr<const client_app>(const context&)> make_client;
  /// Runs once on every thread that runs ClientApps (e.g. to cap torch's
  /// intra-op threads so that concurrent trainings do not oversubscribe cores).
  std::function<void()> on_compute_thread_start;
  /// Checks a run config before any node starts, for what the value domains
  /// in stamen.toml cannot say (keys that constrain each other, a strategy's
  /// parameters against the federation's size). `num_nodes` is the number of
  /// SuperNodes when known (a simulation), 0 otherwise. Returns why the run
  /// cannot start; optional.
  std::function<std::optional<std::string>(const config_record& run_config, size_t num_nodes)>
      check_run_config;
};

/// The symbol an app library exports:
///   extern "C" void stamen_app_components(stamen::app_components* out);
inline constexpr const char* app_entry_symbol = "stamen_app_components";
/// The type of that symbol, as the runtime casts what dlsym returns; STAMEN_APP
/// defines a function of this type.
using app_entry_fn = void (*)(app_components*);

}  // namespace stamen

/// Defines the entry point of an app library; `fn` fills an app_components.
#define STAMEN_APP(fn) \
  extern "C" __attribute__((visibility("default"))) void stamen_app_components( \
      stamen::app_components* out) {                                           \
    fn(*out);                                                                  \
  }
