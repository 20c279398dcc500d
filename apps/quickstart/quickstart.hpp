#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apps/quickstart/task.hpp"
#include "runtime/client_app.hpp"
#include "runtime/server_app.hpp"
#include "runtime/strategy/strategy.hpp"

namespace quickstart {

/// The ClientApp of one SuperNode: its own Net, trained on its own partition
/// (read from `store`, shared by the nodes of this process).
std::shared_ptr<const stamen::client_app> make_client_app(const stamen::context& node_ctx,
                                                          std::shared_ptr<data_store> store);

/// The ServerApp: the chosen strategy over the run config's rounds, then final_model.pt.
stamen::server_app make_server_app();

/// The strategy the run config's `strategy` names (fedavg, fedavgm, fedprox,
/// fedadagrad, fedadam, fedyogi, qfedavg, fedmedian, fedtrimmedavg, krum,
/// multikrum, bulyan, dp-server-fixed, dp-server-adaptive, dp-client-fixed,
/// dp-client-adaptive), its parameters from their kebab-case keys. Throws
/// stamen::run_error naming the key when they cannot make one.
std::unique_ptr<stamen::strategy> make_strategy(const config_record& rc);

/// Why the run config's strategy cannot run on `num_nodes` SuperNodes (0:
/// not known here), in what the value domains of stamen.toml cannot say
/// (Krum's n >= 2f + 3, say); nothing when it can.
std::optional<std::string> check_strategy_config(const config_record& rc, size_t num_nodes);

/// The mods around a node's train handler: the DP clipping mods a
/// client-side DP strategy needs, and LocalDpMod when `local-dp-epsilon` is
/// set (seeded per node).
std::vector<stamen::mod> client_mods(const config_record& rc, uint64_t node_id);

}  // namespace quickstart
