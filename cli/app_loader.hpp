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

/// Finds lib<library>.so in `search_path` (in order) and loads its components.
expected<loaded_app> load_app(const std::string& library,
                              const std::vector<std::filesystem::path>& search_path);

/// Where apps are looked for: $STAMEN_APP_PATH (colon-separated), then the
/// lib/ directory beside the directory of the running `stamen` binary and
/// its stamen/apps/ (where an installed Stamen keeps its apps).
std::vector<std::filesystem::path> default_app_search_path();

}  // namespace stamen
