#pragma once

#include <cstdint>
#include <mutex>

#include <caf/actor_system.hpp>
#include <caf/blocking_actor.hpp>

#include "actors/interfaces.hpp"
#include "messages/codec.hpp"
#include "runtime/grid.hpp"
#include "runtime/logger.hpp"

namespace stamen {

/// The Grid a ServerApp sees when its nodes are actors of a grid actor: calls
/// block the ServerApp's thread (`self`) while the actors do the work.
class in_process_grid : public grid {
 public:
  in_process_grid(caf::blocking_actor* self, grid_actor g, uint64_t run_id,
                  codec_options codec = {}, logger log = {});

  uint64_t run_id() const override { return run_id_; }
  std::vector<uint64_t> node_ids() override;
  size_t wait_for_nodes(size_t n, double timeout_s) override;
  std::vector<std::string> push_messages(std::vector<message> msgs) override;
  std::vector<message> pull_messages(const std::vector<std::string>& message_ids) override;
  stream_report send_and_stream(std::vector<message> msgs, double timeout_s,
                                reply_sink& sink) override;
  std::unique_ptr<instruction_stream> open_stream() override;

  /// Encodes each round's content in parts (envelope::content_parts), so
  /// that the model's arrays go out on the nodes' connections from where they
  /// lie. Only for a grid whose nodes are all behind sockets (a superlink's):
  /// in-process nodes decode the content they get.
  void send_content_in_parts(bool on) { content_in_parts_ = on; }

  /// Closes the batch in flight now, as if its deadline had passed (its
  /// instructions without a reply count as timed out), and wakes a wait on
  /// an open stream. Thread-safe: this is how a stopped run cuts its phase short.
  void interrupt();

 private:
  /// Gives messages ids and encodes them. Instructions of a round usually
  /// carry equal content (the global model): it is encoded once and shared
  /// across calls, so N instructions cost one model, not N.
  class sealer;
  /// Seals all of `msgs`; a message that cannot be encoded is logged and
  /// left out (its id cleared).
  std::vector<envelope> seal(std::vector<message>& msgs);

  caf::blocking_actor* self_;
  grid_actor grid_;
  uint64_t run_id_;
  codec_options codec_;
  bool content_in_parts_ = false;
  logger log_;
  uint64_t next_id_ = 0;
  /// Random per grid: message ids "<run>:<session>.<n>" never repeat across
  /// a superlink restart, so a reply to an instruction sent before it can
  /// never be taken for one to an instruction sent after.
  std::string session_;
  std::mutex mtx_;
  reply_stream_actor current_;  ///< the batch in flight, if any
  class open;
  friend class open;
  open* open_ = nullptr;  ///< the open stream, if any
};

}  // namespace stamen
