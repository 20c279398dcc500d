#pragma once

// `stamen ls`, `stamen log`, `stamen stop` and `stamen pull`: Flower's verbs
// for the runs of a superlink, which the app's federation names.

#include <cstdint>
#include <string>
#include <vector>

namespace stamen {

struct control_command {
  std::string verb;      ///< ls, log, stop or pull
  uint64_t run_id = 0;   ///< all but ls
  std::string app_dir = ".";
  std::string federation;
  std::vector<std::string> federation_config;
  bool follow = false;   ///< log
  std::string dir;       ///< pull: default ./run-<id>
  bool json = false;     ///< ls
};

/// Runs the verb against the federation's superlink; returns the exit code
/// (0 done; 1 the superlink said no or the followed run did not complete;
/// 2 a bad command line or config).
int run_control(const control_command& cmd);

}  // namespace stamen
