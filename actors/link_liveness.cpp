#include "actors/link_liveness.hpp"

namespace stamen {

namespace {

std::chrono::nanoseconds ns(double s) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
}

}  // namespace

link_liveness::link_liveness(double heartbeat_s, double timeout_s)
    : heartbeat_s_(heartbeat_s), timeout_s_(timeout_s) {
  restart();
}

void link_liveness::reset(double heartbeat_s, double timeout_s) {
  heartbeat_s_ = heartbeat_s;
  timeout_s_ = timeout_s;
  restart();
}

void link_liveness::restart() {
  last_heard_ = last_sent_ = last_tick_ = clock_type::now();
}

std::chrono::nanoseconds link_liveness::interval() const { return ns(heartbeat_s_); }

link_liveness::verdict link_liveness::tick(bool may_ping) {
  auto now = clock_type::now();
  bool on_time = now - last_tick_ < 2 * interval() + std::chrono::milliseconds(100);
  last_tick_ = now;
  if (on_time && now - last_heard_ > ns(timeout_s_)) return verdict::dead;
  if (may_ping && now - last_sent_ >= interval()) {
    last_sent_ = now;
    return verdict::ping;
  }
  return verdict::quiet;
}

}  // namespace stamen
