#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "messages/expected.hpp"
#include "runtime/app_components.hpp"

namespace stamen {

/// An app library opened with dlopen; it stays loaded while this lives.
struct loaded_app {
  std::shared_ptr<void> handle;
  app_components components;
};

/// Finds lib<library>.so in `search_path` (in order); the failure lists
/// where it looked.
expected<std::filesystem::path> find_app_library(const std::string& library,
                                                 const std::vector<std::filesystem::path>& search_path);

/// Loads an app library's components. A library that cannot be loaded (a
/// missing dependency, another architecture) fails with the loader's reason.
expected<loaded_app> load_app_file(const std::filesystem::path& file);

/// find_app_library, then load_app_file.
expected<loaded_app> load_app(const std::string& library,
                              const std::vector<std::filesystem::path>& search_path);

/// Where apps are looked for: $STAMEN_APP_PATH (colon-separated), then the
/// lib/ directory beside the directory of the running `stamen` binary and
/// its stamen/apps/ (where an installed Stamen keeps its apps).
std::vector<std::filesystem::path> default_app_search_path();

}  // namespace stamen
