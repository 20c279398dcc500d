#include "cli/signals.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cstdlib>

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
    if (sigwait(&set, &sig) != 0) return;
    on_signal(sig);
    static constexpr char stopping[] = "stamen: stopping; a second Ctrl-C (or SIGTERM) exits at once\n";
    [[maybe_unused]] auto m = write(STDERR_FILENO, stopping, sizeof stopping - 1);
    // A second signal while the orderly stop is under way (a ClientApp that
    // never returns, a peer that never answers) ends the process now, as
    // cargo and pip do: whoever presses Ctrl-C twice means it.
    if (sigwait(&set, &sig) != 0) return;
    static constexpr char note[] = "stamen: second stop signal, exiting at once\n";
    [[maybe_unused]] auto n = write(STDERR_FILENO, note, sizeof note - 1);
    std::_Exit(128 + sig);
  }).detach();
}

}  // namespace stamen
