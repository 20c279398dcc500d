#pragma once

#include <memory>

#include "apps/quickstart/task.hpp"
#include "runtime/client_app.hpp"
#include "runtime/server_app.hpp"

namespace quickstart {

/// The ClientApp of one SuperNode: its own Net, trained on its own partition
/// (read from `store`, shared by the nodes of this process).
std::shared_ptr<const stamen::client_app> make_client_app(const stamen::context& node_ctx,
                                                          std::shared_ptr<data_store> store);

/// The ServerApp: FedAvg over the run config's rounds, then final_model.pt.
stamen::server_app make_server_app();

}  // namespace quickstart
