#pragma once

#include <signal.h>

#include <atomic>
#include <functional>

namespace stamen {

/// Blocks SIGINT and SIGTERM in every thread (call before any starts), so
/// that one thread can wait for them with sigwait instead of an
/// asynchronous handler interrupting whatever runs.
sigset_t block_stop_signals();

/// Starts a detached thread that waits for the first SIGINT or SIGTERM and
/// then calls `on_signal` with its number (once). A second one ends the
/// process at once with exit code 128 + its number, without destructors.
void on_stop_signal(sigset_t set, std::function<void(int)> on_signal);

}  // namespace stamen
