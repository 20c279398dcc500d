#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/tls_files.hpp"
#include "config/value_domain.hpp"
#include "messages/config_record.hpp"
#include "messages/expected.hpp"
#include "messages/ordered_map.hpp"
#include "runtime/fault/fault_plan.hpp"

namespace stamen {

/// One entry of [federations]: where a run executes.
struct federation_config {
  std::string name;
  /// Simulation: this many SuperNodes in one process. A cluster federation
  /// that sets it waits for that many nodes before a run starts (e.g. a
  /// simulation spread over `stamen supernode --nodes N` processes).
  size_t num_supernodes = 10;
  bool num_supernodes_given = false;
  /// Simulation: ClientApps run at once (0: one per core).
  size_t compute_threads = 0;
  /// Seed of the node ids drawn for a simulation.
  uint64_t seed = 42;
  /// A cluster federation names its superlink ("host:port") instead.
  std::optional<std::string> address;
  /// A cluster federation over TLS: root-certificates, certificate and
  /// private-key (the submitter's own, since the superlink verifies it).
  std::optional<tls_files> tls;
  /// With TLS: the name the superlink's certificate must carry as a DNS or
  /// IP subject alternative name (superlink-name); empty: the address's host.
  std::string superlink_name;
  /// With TLS: the superlink's key, pinned (superlink-key): its SHA-256
  /// fingerprint, or a PEM file (relative to the app's directory).
  std::string superlink_key;
};

/// An app's `stamen.toml` (the equivalent of Flower's pyproject.toml), parsed
/// once into typed values. Unknown keys are errors.
struct app_config {
  std::filesystem::path dir;
  std::string name;
  /// The shared library with the app's code: lib<library>.so.
  std::string library;
  /// [app] files: paths (relative to `dir`, files or directories) that a
  /// bundle carries to the cluster besides stamen.toml and the library.
  std::vector<std::string> files;
  /// [app.config], in file order: the run config a ServerApp and ClientApps see.
  config_record run_config;
  /// The domains declared in [app.config] (`key = { default = ..., min = ... }`).
  ordered_map<value_domain> domains;
  std::string default_federation;
  ordered_map<federation_config> federations;
  /// [faults]: what to inject into runs of this app (empty: nothing).
  fault_plan faults;

  /// The federation called `name`, or the default when `name` is empty.
  expected<federation_config> federation(const std::string& name) const;
};

/// The file name looked for in an app directory.
inline constexpr const char* app_config_file = "stamen.toml";

/// Loads `<app_dir>/stamen.toml`. Errors name the file, the line and the key.
expected<app_config> load_app_config(const std::filesystem::path& app_dir);

/// Applies `--run-config` overrides to `run_config`: either "k=v k=v" pairs
/// (values in TOML syntax; bare words are strings) or the path of a TOML file
/// of flat keys. Every key must already exist in `run_config` and its value
/// must have the same type (an integer is accepted where a float is declared).
/// Keys declared `optional` in `domains` may be given though they have no
/// value yet.
expected<void> apply_run_config_overrides(config_record& run_config, const std::string& spec,
                                          const ordered_map<value_domain>* domains = nullptr);

/// Applies `--federation-config "k=v k=v"` to a federation: address,
/// root-certificates, certificate, private-key, num-supernodes,
/// compute-threads, seed. Unknown keys and wrong types are errors.
expected<void> apply_federation_overrides(federation_config& fed, const std::string& spec);

/// Checks every run-config value that has a declared domain (after
/// overrides, before anything starts); the failure names the key, the value
/// and the domain.
expected<void> check_run_config(const config_record& run_config,
                                const ordered_map<value_domain>& domains);

/// Checks a fault plan against the federation it will run on: every node
/// index a rule lists must exist among its `num_nodes` SuperNodes.
expected<void> check_fault_plan(const fault_plan& plan, const federation_config& fed);

/// Loads a fault plan from the [faults] table of a TOML file (--faults FILE).
expected<fault_plan> load_fault_plan(const std::filesystem::path& file);

/// Parses "k=v k=v" into a config record without a schema (e.g. --node-config).
expected<config_record> parse_key_values(const std::string& spec);

}  // namespace stamen
