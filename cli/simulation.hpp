#pragma once

#include <optional>

#include "config/app_config.hpp"
#include "runtime/app_components.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/fault/fault_plan.hpp"
#include "runtime/logger.hpp"
#include "runtime/run_events.hpp"
#include "runtime/strategy/strategy_result.hpp"

namespace stamen {

/// Runs an app on `fed.num_supernodes` SuperNode actors in this process:
/// node i gets node_config {partition-id: i, num-partitions: N}. The run's
/// events go to `events` (Flower's log, the JSON result); a request on
/// `stop` ends it after the phase in flight. Returns what the
/// ServerApp's strategy reported, or the failure that ended the run. With a
/// non-empty `faults` plan, the faults injected are appended to `*injected`
/// (when given). Every Context's app_dir is `app_dir`. With `checkpoints`,
/// each completed round is checkpointed there, and a checkpoint already
/// there is resumed.
expected<std::optional<strategy_result>> run_simulation(const app_components& app,
                                                        const config_record& run_config,
                                                        const federation_config& fed,
                                                        const logger& log, run_observer& events,
                                                        run_stop* stop = nullptr,
                                                        const fault_plan& faults = {},
                                                        std::vector<fault_event>* injected = nullptr,
                                                        const std::string& app_dir = {},
                                                        checkpoint_store* checkpoints = nullptr);

}  // namespace stamen
