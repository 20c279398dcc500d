#pragma once

// Runs a shell command for a test and keeps what it printed.

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace stamen::test {

struct outcome {
  int code;  ///< exit status, or -1 when the command did not exit
  std::string out;
  std::string err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Runs `cmd` with /bin/sh, its stdout and stderr going to files in `scratch`.
inline outcome shell(const std::string& cmd, const std::filesystem::path& scratch) {
  auto out = scratch / "stdout", err = scratch / "stderr";
  int status = std::system((cmd + " >" + out.string() + " 2>" + err.string()).c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

}  // namespace stamen::test
