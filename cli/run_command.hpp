#pragma once

#include <string>
#include <vector>

namespace stamen {

/// `stamen run APP_DIR [options]`, as parsed from the command line.
struct run_command {
  std::string app_dir;
  std::vector<std::string> run_config;         ///< --run-config (repeatable)
  std::string federation;                      ///< --federation; empty: the default
  std::vector<std::string> federation_config;  ///< --federation-config (repeatable)
  std::string faults_file;                     ///< --faults
  bool json = false;                           ///< --format json
  bool detach = false;                         ///< --detach: a cluster run, submitted and left
  std::string checkpoint_dir;                  ///< --checkpoint-dir: checkpoint each round there
  std::string resume_dir;                      ///< --resume: go on from the checkpoint there
  std::string report_dir;                      ///< --report: write report.html there
  bool quiet = false;                          ///< --quiet: warnings and errors only
  bool verbose = false;                        ///< --verbose: debug lines too
};

/// Runs an app on a simulation or a cluster federation, logging in Flower's
/// format to stderr and, with `json`, printing the result on stdout. Returns
/// the process's exit code: 0 done, 1 the run failed, 2 bad input (a config,
/// an override, a fault plan or an app that cannot be loaded).
int run_app(const run_command& cmd);

}  // namespace stamen
