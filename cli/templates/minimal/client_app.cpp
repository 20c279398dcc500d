// The ClientApp: train and evaluate on this node's own data.
#include "runtime/client_app.hpp"

#include <memory>

#include "task.hpp"

namespace @NAME@ {

using namespace stamen;

std::shared_ptr<const client_app> make_client_app(const context& node) {
  auto id = node.node_config.contains("partition-id") ? config_int(node.node_config, "partition-id") : 0;
  auto& rc = node.run_config;
  auto data = std::make_shared<std::vector<sample>>(
      make_data(id, config_int(rc, "samples-per-node"), static_cast<uint64_t>(config_int(rc, "seed"))));
  auto app = std::make_shared<client_app>();
  app->train([data](const message& msg, context& ctx) {
    auto [arrays, mse] = train(*msg.content().arrays("arrays"), *data,
                               config_int(ctx.run_config, "local-epochs"),
                               config_double(ctx.run_config, "lr"));
    record_dict reply;
    reply.insert_or_assign("arrays", std::move(arrays));
    reply.insert_or_assign("metrics", metric_record{{"train_loss", mse},
                                                    {"num-examples", static_cast<int64_t>(data->size())}});
    return make_reply(msg, std::move(reply));
  });
  app->evaluate([data](const message& msg, context&) {
    record_dict reply;
    reply.insert_or_assign("metrics",
                           metric_record{{"eval_loss", evaluate(*msg.content().arrays("arrays"), *data)},
                                         {"num-examples", static_cast<int64_t>(data->size())}});
    return make_reply(msg, std::move(reply));
  });
  return app;
}

}  // namespace @NAME@
