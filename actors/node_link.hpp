#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/link_options.hpp"
#include "actors/superlink.hpp"
#include "messages/codec.hpp"
#include "messages/config_record.hpp"
#include "runtime/logger.hpp"

namespace stamen {

struct node_link_options {
  std::string host;
  uint16_t port = 9092;
  /// The node's own settings (e.g. partition-id, num-partitions), as given
  /// on the command line; its Context's node_config.
  config_record node_config;
  std::string node_config_text;  ///< the same, for the superlink's log
  /// SuperNodes this process hosts behind the one link (a simulation that
  /// spans processes): each has its own node id, Context and partition.
  uint32_t nodes = 1;
  /// With it, node i's node_config has partition-id = partition_offset + i.
  std::optional<int64_t> partition_offset;
  /// Threads that run the nodes' ClientApps (trainings at once).
  size_t compute_threads = 1;
  link_options link;             ///< TLS files; heartbeats come from the superlink
  /// Reconnection backoff: the first wait, doubled after each failure up to the cap.
  double backoff_initial_s = 0.25;
  double backoff_max_s = 8;
  codec_options codec;
  logger log;
  app_resolver resolve;  ///< loads a run's ClientApp from its bundle
  /// Where bundles are cached by hash, across runs and restarts.
  std::filesystem::path bundle_cache;
  /// Take bundles from the superlink. Set with TLS (the superlink proved
  /// itself with a certificate of our CA); without TLS anyone on the path
  /// could hand this node code to run, so only when told.
  bool accept_bundles = false;
  /// SHA-256 fingerprints of the submitter keys whose bundles this node
  /// runs: a run's bundle must be signed by one of them (and the key's
  /// certificate be signed by the CA). Empty: any bundle the superlink
  /// passes on (the node trusts the superlink to have checked its submitter).
  std::vector<std::string> trusted_submitters;
};

/// Starts a SuperNode process's link in `sys` (with CAF's middleman loaded):
/// a broker that connects to the superlink, proves who it is, registers its
/// `nodes` SuperNodes (one by default; the superlink sees each as a node,
/// and heartbeats are per link), and for each run builds each node's
/// ClientApp and a SuperNode actor (the same actor as in a simulation) whose
/// replies it carries back; several
/// runs at once each have their own (and their own Context), found by the
/// run id that starts an instruction's message id, until the superlink
/// says the run ended. The ClientApp comes from the run's bundle: from the cache when it holds the
/// hash, else fetched from the superlink and checked against the hash. A
/// node that cannot get or load a bundle answers the run's instructions
/// with errors naming why (failures to the strategy) and stays up. When the
/// superlink goes away it reconnects with capped exponential backoff and
/// registers again under the same node id; its SuperNodes keep their Contexts.
/// Returns the broker; it runs until it is told to exit or a superlink
/// refuses it for good (bad credentials), then it quits with an error.
caf::actor start_node_link(caf::actor_system& sys, node_link_options opts);

}  // namespace stamen
