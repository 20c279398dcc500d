#include "actors/in_process_grid.hpp"

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "actors/reply_stream.hpp"
#include "runtime/strategy.hpp"  // run_error

namespace stamen {

namespace {

caf::timespan to_timespan(double seconds) {
  return std::chrono::duration_cast<caf::timespan>(std::chrono::duration<double>(seconds));
}

[[noreturn]] void fail_call(const char* what, const caf::error& err, caf::actor_system& sys) {
  throw run_error(std::string{"grid: "} + what + " failed: " + sys.render(err));
}

}  // namespace

in_process_grid::in_process_grid(caf::blocking_actor* self, grid_actor g, uint64_t run_id,
                                 codec_options codec, logger log)
    : self_(self), grid_(std::move(g)), run_id_(run_id), codec_(codec), log_(std::move(log)) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(std::random_device{}()) << 32 |
                                                static_cast<unsigned long long>(std::random_device{}()));
  session_ = hex;
}

std::vector<uint64_t> in_process_grid::node_ids() {
  std::vector<uint64_t> out;
  self_->request(grid_, caf::infinite, nodes_atom::value)
      .receive([&](std::vector<uint64_t>& ids) { out = std::move(ids); },
               [&](caf::error& err) { fail_call("node_ids", err, self_->system()); });
  return out;
}

size_t in_process_grid::wait_for_nodes(size_t n, double timeout_s) {
  size_t out = 0;
  self_->request(grid_, caf::infinite, wait_atom::value, static_cast<uint64_t>(n),
                 to_timespan(timeout_s))
      .receive([&](uint64_t count) { out = count; },
               [&](caf::error& err) { fail_call("wait_for_nodes", err, self_->system()); });
  return out;
}

std::vector<envelope> in_process_grid::seal(std::vector<message>& msgs) {
  std::vector<envelope> out;
  out.reserve(msgs.size());
  // Instructions of a round usually carry equal content (the global model):
  // it is encoded once and shared, so N instructions cost one model, not N.
  // Equal arrays share their buffers, so the comparison is cheap.
  const record_dict* last = nullptr;
  expected<buffer> content = buffer{};
  for (auto& m : msgs) {
    auto& md = m.meta();
    md.run_id = run_id_;
    md.message_id = std::to_string(run_id_) + ":" + session_ + "." + std::to_string(++next_id_);
    if (m.has_content() && !(last != nullptr && *last == m.content())) {
      content = encode_content(m.content(), codec_);
      last = &m.content();
    }
    auto header = m.has_content() ? encode_header(m, codec_) : encode(m, codec_);
    if (!header || (m.has_content() && !content)) {
      log_.error("grid: cannot send message to node " + std::to_string(md.dst_node_id) + ": " +
                 (header ? content.error() : header.error()).to_string());
      md.message_id.clear();
      last = nullptr;
      continue;
    }
    out.push_back(envelope{md.message_id, {}, md.dst_node_id, md.created_at + md.ttl,
                           std::move(*header), m.has_content() ? *content : buffer{}});
  }
  return out;
}

std::vector<std::string> in_process_grid::push_messages(std::vector<message> msgs) {
  auto envs = seal(msgs);
  std::vector<std::string> ids;
  for (auto& m : msgs) ids.push_back(m.meta().message_id);
  self_->request(grid_, caf::infinite, push_atom::value, std::move(envs))
      .receive([](std::vector<std::string>&) {},
               [&](caf::error& err) { fail_call("push_messages", err, self_->system()); });
  return ids;
}

std::vector<message> in_process_grid::pull_messages(const std::vector<std::string>& ids) {
  std::vector<message> out;
  self_->request(grid_, caf::infinite, pull_atom::value, ids)
      .receive(
          [&](std::vector<envelope>& envs) {
            for (auto& e : envs) {
              auto m = decode(e.bytes, e.content, codec_);
              if (m)
                out.push_back(std::move(*m));
              else
                log_.warn("grid: dropped malformed reply to '" + e.reply_to +
                          "': " + m.error().to_string());
            }
          },
          [&](caf::error& err) { fail_call("pull_messages", err, self_->system()); });
  return out;
}

stream_report in_process_grid::send_and_stream(std::vector<message> msgs, double timeout_s,
                                               reply_sink& sink) {
  auto envs = seal(msgs);
  stream_report report;
  report.sent = envs.size();
  std::vector<std::string> ids;
  std::unordered_map<std::string, uint64_t> node_of;
  for (auto& e : envs) {
    ids.push_back(e.message_id);
    node_of.emplace(e.message_id, e.node_id);
  }
  auto stream =
      self_->system().spawn(reply_stream_behavior, &sink, ids, to_timespan(timeout_s), codec_);
  self_->send(grid_, stream_atom::value, std::move(envs), stream);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    current_ = stream;
  }
  std::vector<std::string> missing;
  self_->request(stream, caf::infinite, await_atom::value)
      .receive([&](std::vector<std::string>& xs) { missing = std::move(xs); },
               [&](caf::error& err) { fail_call("send_and_stream", err, self_->system()); });
  {
    std::lock_guard<std::mutex> guard{mtx_};
    current_ = reply_stream_actor{};
  }
  report.replied = report.sent - missing.size();
  for (auto& id : missing) report.timed_out.emplace_back(id, node_of[id]);
  // The batch is closed: the grid forgets its instructions, so that late or
  // second replies are dropped there and nothing of the batch is kept.
  if (!ids.empty()) self_->send(grid_, cancel_atom::value, std::move(ids));
  return report;
}

namespace {

// Replies of an open stream, handed from the actors' threads to the
// ServerApp's, which waits for them in next().
class reply_queue : public reply_sink {
 public:
  void on_reply(const message& reply) override {
    std::lock_guard<std::mutex> guard{mtx_};
    queue_.push_back(reply);
    ready_.notify_one();
  }
  std::optional<message> pop(double timeout_s) {
    std::unique_lock<std::mutex> lock{mtx_};
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                     std::chrono::duration<double>(std::max(timeout_s, 0.0)));
    ready_.wait_until(lock, until, [&] { return !queue_.empty() || woken_; });
    woken_ = false;
    if (queue_.empty()) return std::nullopt;
    auto m = std::move(queue_.front());
    queue_.pop_front();
    return m;
  }
  void wake() {
    std::lock_guard<std::mutex> guard{mtx_};
    woken_ = true;
    ready_.notify_one();
  }

 private:
  std::mutex mtx_;
  std::condition_variable ready_;
  std::deque<message> queue_;
  bool woken_ = false;
};

}  // namespace

class in_process_grid::open : public instruction_stream {
 public:
  explicit open(in_process_grid& g) : g_(g), queue_(std::make_shared<reply_queue>()) {
    std::lock_guard<std::mutex> guard{g_.mtx_};
    g_.open_ = this;
  }
  ~open() override {
    {
      std::lock_guard<std::mutex> guard{g_.mtx_};
      g_.open_ = nullptr;
    }
    // What is still in flight is no longer wanted: the grid forgets it and
    // its streams close now rather than at their deadlines.
    if (!in_flight_.empty()) {
      std::vector<std::string> ids;
      for (auto& [id, stream] : in_flight_) {
        ids.push_back(id);
        caf::anon_send(stream, deadline_atom::value);
      }
      g_.self_->send(g_.grid_, cancel_atom::value, std::move(ids));
    }
  }

  std::vector<std::string> send(std::vector<message> msgs, double timeout_s) override {
    auto envs = g_.seal(msgs);
    std::vector<std::pair<std::string, uint64_t>> ids;
    for (auto& e : envs) ids.emplace_back(e.message_id, e.node_id);
    auto stream = g_.self_->system().spawn(open_reply_stream_behavior, queue_, ids, timeout_s,
                                          g_.codec_);
    for (auto& [id, node] : ids) in_flight_.emplace(id, stream);
    g_.self_->send(g_.grid_, stream_atom::value, std::move(envs), stream);
    std::vector<std::string> out;
    for (auto& m : msgs) out.push_back(m.meta().message_id);
    return out;
  }

  std::optional<message> next(double timeout_s) override {
    auto m = queue_->pop(timeout_s);
    if (m) {
      auto& id = m->meta().reply_to_message_id;
      if (in_flight_.erase(id) > 0)  // answered: the grid may forget it
        g_.self_->send(g_.grid_, cancel_atom::value, std::vector<std::string>{id});
    }
    return m;
  }

  void wake() { queue_->wake(); }

 private:
  in_process_grid& g_;
  std::shared_ptr<reply_queue> queue_;
  std::unordered_map<std::string, reply_stream_actor> in_flight_;  ///< by id: its stream
};

std::unique_ptr<instruction_stream> in_process_grid::open_stream() {
  return std::make_unique<open>(*this);
}

void in_process_grid::interrupt() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (current_) caf::anon_send(current_, deadline_atom::value);
  if (open_) open_->wake();
}

}  // namespace stamen
