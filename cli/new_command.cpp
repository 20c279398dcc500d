#include "cli/new_command.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>

namespace stamen {

namespace fs = std::filesystem;

namespace {

std::string replaced(std::string text, const std::string& name) {
  const std::string key = "@NAME@";
  for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at + name.size()))
    text.replace(at, key.size(), name);
  return text;
}

int refuse(const std::string& why) {
  std::cerr << "stamen new: " << why << '\n';
  return 2;
}

}  // namespace

int new_project(const new_command& cmd) {
  // The name becomes a C++ namespace, a CMake target and a library name.
  static const std::regex identifier{"[A-Za-z_][A-Za-z0-9_]*"};
  if (!std::regex_match(cmd.name, identifier))
    return refuse("'" + cmd.name +
                  "' is not a valid name: use letters, digits and '_', not starting with a digit");
  std::set<std::string> templates;
  for (auto& [path, text] : template_files()) templates.insert(path.substr(0, path.find('/')));
  if (templates.count(cmd.template_name) == 0) {
    std::string known;
    for (auto& t : templates) known += (known.empty() ? "" : ", ") + t;
    return refuse("unknown template '" + cmd.template_name + "' (known: " + known + ")");
  }
  auto root = fs::path{cmd.dir} / cmd.name;
  std::error_code ec;
  if (fs::exists(root, ec))
    return refuse("'" + root.string() + "' exists already; nothing was written");
  auto prefix = cmd.template_name + "/";
  for (auto& [path, text] : template_files()) {
    if (path.rfind(prefix, 0) != 0) continue;
    auto to = root / path.substr(prefix.size());
    fs::create_directories(to.parent_path(), ec);
    std::ofstream out(to, std::ios::binary);
    out << replaced(text, cmd.name);
    if (!out.flush()) return refuse("cannot write '" + to.string() + "'");
  }
  std::cout << "Created '" << root.string() << "' from the '" << cmd.template_name
            << "' template. Build and run it:\n"
            << "  cd " << root.string() << "\n"
            << "  cmake -B build && cmake --build build\n"
            << "  stamen run .\n";
  return 0;
}

}  // namespace stamen
