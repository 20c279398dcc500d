#pragma once

#include <chrono>

namespace stamen {

/// The heartbeat rule of a cluster link, the same for the three brokers:
/// each side pings when it has sent nothing for a heartbeat, and a peer
/// silent for longer than the timeout is dead. Bytes moving either way count
/// as life (a peer reading or writing a large frame is not silent).
class link_liveness {
 public:
  using clock_type = std::chrono::steady_clock;

  enum class verdict {
    quiet,  ///< nothing to do
    ping,   ///< send a ping now
    dead,   ///< the peer was silent past the timeout
  };

  link_liveness(double heartbeat_s = 0.5, double timeout_s = 2.0);

  /// New settings (e.g. the superlink's, from its challenge); both clocks restart.
  void reset(double heartbeat_s, double timeout_s);
  /// Restarts both clocks (a new connection).
  void restart();
  void heard() { last_heard_ = clock_type::now(); }
  void sent() { last_sent_ = clock_type::now(); }

  /// Called on each heartbeat tick. `may_ping`: nothing else is queued to
  /// send (a queued frame will do as a sign of life). A tick that comes late
  /// means the broker was busy (copying a large frame, say): what the peer
  /// sent meanwhile is still unread, so its silence is not judged then.
  verdict tick(bool may_ping = true);

  /// Seconds since the peer was last heard from (a frame, a ping, any byte).
  double silent_s() const { return std::chrono::duration<double>(clock_type::now() - last_heard_).count(); }

  double heartbeat_s() const { return heartbeat_s_; }
  double timeout_s() const { return timeout_s_; }
  /// The heartbeat as a duration, for the broker's timer.
  std::chrono::nanoseconds interval() const;

 private:
  double heartbeat_s_;
  double timeout_s_;
  clock_type::time_point last_heard_;
  clock_type::time_point last_sent_;
  clock_type::time_point last_tick_;
};

}  // namespace stamen
