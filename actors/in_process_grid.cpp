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
#include "runtime/strategy/strategy.hpp"  // run_error

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

class in_process_grid::sealer {
 public:
  explicit sealer(in_process_grid& g) : g_(g) {}

  /// Seals `m` into `out`; false (logged, id cleared) if it cannot be encoded.
  bool seal(message& m, std::vector<envelope>& out) {
    auto& md = m.meta();
    md.run_id = g_.run_id_;
    md.message_id = std::to_string(g_.run_id_) + ":" + g_.session_ + "." + std::to_string(++g_.next_id_);
    // Equal arrays share their buffers, so the comparison is cheap.
    if (m.has_content() && !(last_ != nullptr && *last_ == m.content())) {
      if (g_.content_in_parts_) {
        content_ = encode_content_parts(m.content(), g_.codec_);
      } else if (auto flat = encode_content(m.content(), g_.codec_)) {
        content_ = std::vector<buffer>{std::move(*flat)};
      } else {
        content_ = flat.error();
      }
      last_ = &m.content();
    }
    auto header = m.has_content() ? encode_header(m, g_.codec_) : encode(m, g_.codec_);
    if (!header || (m.has_content() && !content_)) {
      g_.log_.error("grid: cannot send message to node " + std::to_string(md.dst_node_id) + ": " +
                    (header ? content_.error() : header.error()).to_string());
      md.message_id.clear();
      last_ = nullptr;
      return false;
    }
    // Its ttl counts from its creation (moments ago, on this host's wall
    // clock); its deadline is set on the steady clock, which no clock step
    // moves.
    double left = md.ttl - std::max(0.0, now_seconds() - md.created_at);
    envelope e{md.message_id, {}, md.dst_node_id, steady_seconds() + left, std::move(*header), {}};
    if (m.has_content()) {
      if (content_->size() == 1) e.content = content_->front();
      else e.content_parts = *content_;
    }
    out.push_back(std::move(e));
    return true;
  }

 private:
  in_process_grid& g_;
  const record_dict* last_ = nullptr;
  expected<std::vector<buffer>> content_ = std::vector<buffer>{};
};

std::vector<envelope> in_process_grid::seal(std::vector<message>& msgs) {
  std::vector<envelope> out;
  out.reserve(msgs.size());
  sealer s{*this};
  for (auto& m : msgs) s.seal(m, out);
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
  stream_report report;
  std::vector<std::string> ids;
  std::vector<uint64_t> nodes;
  ids.reserve(msgs.size());
  nodes.reserve(msgs.size());
  // The stream is spawned once the first slice is sealed, not before: spawned
  // first, a 1,000-node round of 62k floats took twice as long (profiled:
  // the nodes encoded their replies into fresh memory before any reply was
  // folded and freed, so each round paid its page faults anew).
  reply_stream_actor stream;
  auto spawn_stream = [&] {
    stream = self_->system().spawn(reply_stream_behavior, &sink,
                                   static_cast<uint64_t>(msgs.size()), to_timespan(timeout_s),
                                   codec_);
    std::lock_guard<std::mutex> guard{mtx_};
    current_ = stream;
  };
  // Sent in slices as they are sealed: the grid and the nodes start on the
  // first while this thread seals the next (a round of a million nodes
  // would otherwise leave one of two cores idle for a second).
  constexpr size_t slice = 4096;
  sealer s{*this};
  std::vector<envelope> envs;
  for (size_t i = 0; i < msgs.size(); i += slice) {
    envs.reserve(std::min(slice, msgs.size() - i));
    for (size_t j = i; j < std::min(i + slice, msgs.size()); ++j) {
      if (!s.seal(msgs[j], envs)) continue;
      ids.push_back(envs.back().message_id);
      nodes.push_back(envs.back().node_id);
    }
    if (!stream) spawn_stream();
    if (!envs.empty()) self_->send(grid_, stream_atom::value, std::move(envs), stream);
    envs = {};
  }
  if (!stream) spawn_stream();
  report.sent = ids.size();
  // What could not be sealed is not waited for.
  if (ids.size() < msgs.size())
    self_->send(stream, cancel_atom::value, static_cast<uint64_t>(msgs.size() - ids.size()));
  uint64_t replied = 0;
  std::vector<std::string> answered;
  self_->request(stream, caf::infinite, await_atom::value)
      .receive(
          [&](uint64_t n, std::vector<std::string>& xs) {
            replied = n;
            answered = std::move(xs);
          },
          [&](caf::error& err) { fail_call("send_and_stream", err, self_->system()); });
  {
    std::lock_guard<std::mutex> guard{mtx_};
    current_ = reply_stream_actor{};
  }
  report.replied = replied;
  if (replied < ids.size()) {
    // Some got no reply (a rare path: only then are the ids compared).
    std::unordered_set<std::string> got(answered.begin(), answered.end());
    for (size_t i = 0; i < ids.size(); ++i)
      if (got.count(ids[i]) == 0) report.timed_out.emplace_back(ids[i], nodes[i]);
  }
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
    // What is still in flight is no longer wanted, nor second copies of
    // what was answered: the grid forgets both and their streams go now
    // rather than at their deadlines.
    std::vector<std::string> ids;
    std::unordered_set<caf::actor_id> streams;
    auto drop = [&](const std::string& id, const reply_stream_actor& stream) {
      ids.push_back(id);
      if (streams.insert(stream.id()).second) caf::anon_send_exit(stream, caf::exit_reason::user_shutdown);
    };
    for (auto& [id, stream] : in_flight_) drop(id, stream);
    for (auto& [id, stream] : answered_) drop(id, stream);
    if (!ids.empty()) g_.self_->send(g_.grid_, cancel_atom::value, std::move(ids));
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
    if (!m) return m;
    // Answered: remembered a while, so that a second copy of its reply (a
    // duplicating node or network) still reaches the caller, who counts it;
    // the oldest answered instructions are forgotten.
    auto i = in_flight_.find(m->meta().reply_to_message_id);
    if (i != in_flight_.end()) {
      answered_.emplace_back(i->first, i->second);
      in_flight_.erase(i);
    }
    while (answered_.size() > remembered_replies) {
      auto& [id, stream] = answered_.front();
      g_.self_->send(g_.grid_, cancel_atom::value, std::vector<std::string>{id});
      caf::anon_send(stream, cancel_atom::value, uint64_t{1});
      answered_.pop_front();
    }
    return m;
  }

  void wake() { queue_->wake(); }

 private:
  in_process_grid& g_;
  std::shared_ptr<reply_queue> queue_;
  /// How many answered instructions are remembered for second copies.
  static constexpr size_t remembered_replies = 256;
  std::unordered_map<std::string, reply_stream_actor> in_flight_;  ///< by id: its stream
  std::deque<std::pair<std::string, reply_stream_actor>> answered_;  ///< oldest first
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
