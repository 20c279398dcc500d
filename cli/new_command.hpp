#pragma once

#include <string>
#include <utility>
#include <vector>

namespace stamen {

/// `stamen new NAME [--template minimal|pytorch] [--dir DIR]`.
struct new_command {
  std::string name;
  std::string template_name = "minimal";
  std::string dir = ".";  ///< the project goes in DIR/NAME
};

/// Writes a project like Flower's template: CMakeLists.txt (find_package(Stamen)),
/// stamen.toml, task/client_app/server_app and a README. Refuses a name that
/// is not an identifier, an unknown template, or a directory that exists.
/// Returns the exit code (0, or 2 with the error on stderr).
int new_project(const new_command& cmd);

/// The templates' files, by "<template>/<path>" (generated at build time
/// from cli/templates); `@NAME@` stands for the project's name.
const std::vector<std::pair<std::string, std::string>>& template_files();

}  // namespace stamen
