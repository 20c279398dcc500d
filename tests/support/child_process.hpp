#pragma once

// Starts and ends other processes by pid, for the cluster tests and
// benchmarks: a superlink and its supernodes are real processes, killed,
// frozen and restarted by the test itself.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace stamen::test {

class child_process {
 public:
  /// Runs `argv` with stderr (and stdout, unless `stdout_path` is given)
  /// appended to `log_path`.
  child_process(const std::vector<std::string>& argv, std::string log_path,
                const std::string& stdout_path = {})
      : log_path_(std::move(log_path)) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (stdout_path.empty())
      posix_spawn_file_actions_adddup2(&fa, 2, 1);
    else
      posix_spawn_file_actions_addopen(&fa, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0)
      throw std::runtime_error("cannot start " + argv[0]);
    posix_spawn_file_actions_destroy(&fa);
  }

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  ~child_process() {
    if (pid_ > 0 && running()) {
      ::kill(pid_, SIGKILL);
      ::kill(pid_, SIGCONT);
    }
    wait(5);
  }

  pid_t pid() const { return pid_; }

  void signal(int sig) { ::kill(pid_, sig); }

  bool running() {
    if (status_ >= 0) return false;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return false;
    }
    return true;
  }

  /// The exit status (128 + signal when killed), or -1 if still running after `timeout_s`.
  int wait(double timeout_s) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (running()) {
      if (std::chrono::steady_clock::now() > end) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return status_;
  }

  std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  /// How often `text` occurs in the log.
  size_t count(const std::string& text) const {
    auto s = log();
    size_t n = 0;
    for (auto i = s.find(text); i != std::string::npos; i = s.find(text, i + 1)) ++n;
    return n;
  }

  /// The word that follows the first `marker` in the log (e.g. the port after
  /// "listening on "), or "" if there is none yet.
  std::string word_after(const std::string& marker) const {
    auto s = log();
    auto at = s.find(marker);
    if (at == std::string::npos) return {};
    at += marker.size();
    return s.substr(at, s.find_first_of(" \n", at) - at);
  }

  /// Resident memory of the process, in bytes.
  size_t rss_bytes() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/statm");
    size_t pages = 0, resident = 0;
    in >> pages >> resident;
    return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  }

  /// Waits until `text` occurs at least `times` times in the log; returns the
  /// seconds waited, or -1 after `timeout_s`.
  double wait_for(const std::string& text, double timeout_s, size_t times = 1) const {
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (count(text) >= times) return waited;
      if (waited > timeout_s) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

}  // namespace stamen::test
