#pragma once

// A grid that runs in the test's own thread: nodes 1..n are ClientApps
// called directly, in node order, so that a strategy's whole round loop
// (sampling, configure, streaming aggregation, server state) runs without
// actors, threads or time.

#include <algorithm>
#include <map>
#include <memory>

#include "runtime/client_app.hpp"
#include "runtime/grid.hpp"

namespace stamen::test {

class scripted_grid : public grid {
 public:
  scripted_grid(size_t n, std::shared_ptr<const client_app> app) : app_(std::move(app)) {
    for (uint64_t id = 1; id <= n; ++id) {
      auto& ctx = contexts_[id];
      ctx.run_id = 1;
      ctx.node_id = id;
    }
  }

  uint64_t run_id() const override { return 1; }
  std::vector<uint64_t> node_ids() override {
    std::vector<uint64_t> out;
    for (auto& [id, ctx] : contexts_) out.push_back(id);
    return out;
  }
  size_t wait_for_nodes(size_t, double) override { return contexts_.size(); }

  std::vector<std::string> push_messages(std::vector<message> msgs) override {
    std::vector<std::string> ids;
    for (auto& m : msgs) {
      ids.push_back(m.meta().message_id);
      pending_.push_back(answer(m));
    }
    return ids;
  }
  std::vector<message> pull_messages(const std::vector<std::string>&) override {
    return std::exchange(pending_, {});
  }
  stream_report send_and_stream(std::vector<message> msgs, double, reply_sink& sink) override {
    std::sort(msgs.begin(), msgs.end(),
              [](auto& a, auto& b) { return a.meta().dst_node_id < b.meta().dst_node_id; });
    stream_report r;
    r.sent = msgs.size();
    for (auto& m : msgs) {
      sink.on_reply(answer(m));
      ++r.replied;
    }
    return r;
  }

  /// Every instruction sent so far, in order.
  const std::vector<message>& sent() const { return sent_; }

 private:
  message answer(const message& m) {
    sent_.push_back(m);
    return app_->handle(m, contexts_.at(m.meta().dst_node_id));
  }

  std::shared_ptr<const client_app> app_;
  std::map<uint64_t, context> contexts_;
  std::vector<message> pending_;
  std::vector<message> sent_;
};

}  // namespace stamen::test
