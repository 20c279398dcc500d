#pragma once

// A grid that runs in the test's own thread: nodes 1..n are ClientApps
// called directly, in node order, so that a strategy's whole round loop
// (sampling, configure, streaming aggregation, server state) runs without
// actors, threads or time.

#include <algorithm>
#include <functional>
#include <optional>
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

  /// An open stream in virtual time: an instruction sent at time t to node
  /// k is answered at t + duration(k) (ties: in the order sent), so that
  /// arrivals are exact and repeatable.
  std::unique_ptr<instruction_stream> open_stream() override {
    return std::make_unique<stream>(*this);
  }

  /// How long node k takes to answer in an open stream (default 1.0).
  std::function<double(uint64_t node)> duration = [](uint64_t) { return 1.0; };

  /// Every instruction sent so far, in order.
  const std::vector<message>& sent() const { return sent_; }

 private:
  class stream : public instruction_stream {
   public:
    explicit stream(scripted_grid& g) : g_(g) {}
    std::vector<std::string> send(std::vector<message> msgs, double) override {
      std::vector<std::string> ids;
      for (auto& m : msgs) {
        m.meta().message_id = "s" + std::to_string(++g_.next_id_);
        ids.push_back(m.meta().message_id);
        due_.emplace(std::pair{now_ + g_.duration(m.meta().dst_node_id), g_.next_id_}, std::move(m));
      }
      return ids;
    }
    std::optional<message> next(double) override {
      if (due_.empty()) return std::nullopt;
      auto it = due_.begin();
      now_ = it->first.first;
      auto reply = g_.answer(it->second);
      due_.erase(it);
      return reply;
    }

   private:
    scripted_grid& g_;
    double now_ = 0;
    std::map<std::pair<double, uint64_t>, message> due_;
  };

  message answer(const message& m) {
    sent_.push_back(m);
    return app_->handle(m, contexts_.at(m.meta().dst_node_id));
  }

  std::shared_ptr<const client_app> app_;
  std::map<uint64_t, context> contexts_;
  std::vector<message> pending_;
  uint64_t next_id_ = 0;
  std::vector<message> sent_;
};

}  // namespace stamen::test
