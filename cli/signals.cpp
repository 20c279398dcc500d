#include "cli/signals.hpp"

#include <pthread.h>

#include <thread>

namespace stamen {

sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

void on_stop_signal(sigset_t set, std::function<void(int)> on_signal) {
  std::thread([set, on_signal = std::move(on_signal)] {
    int sig = 0;
    if (sigwait(&set, &sig) == 0) on_signal(sig);
  }).detach();
}

}  // namespace stamen
