// The quickstart's ClientApp (Flower's client_app.py).
#include "apps/quickstart/quickstart.hpp"

#include <map>
#include <tuple>

namespace quickstart {

using namespace stamen;

namespace {

// What a SuperNode keeps between messages: its share of the data, once
// loaded (indices into the data set the process shares). Its model is not
// kept: every instruction carries the global weights and training starts a
// fresh optimizer, so a node needs a Net only while it trains or evaluates.
// That makes a node's memory O(its Context) — a simulation of 100,000 nodes
// holds 100,000 of these and a Net per compute thread, as Flower builds a
// ClientApp per message and keeps only the Context.
struct node {
  std::optional<node_data> data;
};

// The Net of the calling (compute) thread, built once per input shape;
// trainings on one thread never overlap, so it is one node's at a time.
model& thread_model(image_shape s) {
  thread_local std::map<std::tuple<int64_t, int64_t, int64_t>, std::unique_ptr<model>> nets;
  auto& net = nets[{s.channels, s.height, s.width}];
  if (!net) net = std::make_unique<model>(s);
  return *net;
}

node_data& data_of(node& n, data_store& store, const context& ctx) {
  if (!n.data) {
    auto spec = data_spec::from(ctx.run_config);
    auto id = static_cast<size_t>(config_int(ctx.node_config, "partition-id"));
    auto count = static_cast<size_t>(config_int(ctx.node_config, "num-partitions"));
    auto d = store.partition(spec, id, count);
    if (!d) throw std::runtime_error(d.error().what);
    n.data = std::move(*d);
  }
  return *n.data;
}

// The thread's Net with the instruction's global weights (all of them: the
// load is strict, so nothing of the node that used it before is left).
model& load_global(image_shape s, const message& msg) {
  auto* arrays = msg.content().arrays("arrays");
  if (arrays == nullptr) throw std::invalid_argument("instruction has no ArrayRecord 'arrays'");
  auto& net = thread_model(s);
  if (auto ok = net.load(*arrays); !ok) throw std::invalid_argument(ok.error().what);
  return net;
}

}  // namespace

std::shared_ptr<const client_app> make_client_app(const context& node_ctx,
                                                  std::shared_ptr<data_store> store) {
  auto self = std::make_shared<node>();
  auto shape = shape_of(config_string(node_ctx.run_config, "dataset"));
  auto app = std::make_shared<client_app>();

  app->train([self, store, shape](const message& msg, context& ctx) {
    auto& net = load_global(shape, msg);
    auto& data = data_of(*self, *store, ctx);
    auto* config = msg.content().configs("config");
    double lr = config && config->contains("lr") ? config_double(*config, "lr")
                                                 : config_double(ctx.run_config, "lr");
    auto round = config && config->contains("server-round") ? config_int(*config, "server-round") : 0;
    // FedProx sends its proximal term's weight with every train instruction.
    double mu = config && config->contains("proximal-mu") ? config_double(*config, "proximal-mu") : 0;
    auto loss = net.train(data, config_int(ctx.run_config, "local-epochs"), lr,
                                config_int(ctx.run_config, "batch-size"),
                                static_cast<uint64_t>(config_int(ctx.run_config, "seed")) +
                                    ctx.node_id + static_cast<uint64_t>(round),
                                mu);
    record_dict reply;
    reply.insert_or_assign("arrays", net.arrays());
    reply.insert_or_assign("metrics",
                           metric_record{{"train_loss", loss},
                                         {"num-examples", static_cast<int64_t>(data.train.size())}});
    return make_reply(msg, std::move(reply));
  }, client_mods(node_ctx.run_config, node_ctx.node_id));  // DP mods, when the run config asks


  app->evaluate([self, store, shape](const message& msg, context& ctx) {
    auto& net = load_global(shape, msg);
    auto& data = data_of(*self, *store, ctx);
    auto [loss, acc] = net.test(data, config_int(ctx.run_config, "batch-size"));
    record_dict reply;
    reply.insert_or_assign("metrics",
                           metric_record{{"eval_loss", loss},
                                         {"eval_acc", acc},
                                         {"num-examples", static_cast<int64_t>(data.test.size())}});
    return make_reply(msg, std::move(reply));
  });
  return app;
}

}  // namespace quickstart
