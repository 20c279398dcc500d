#include "cli/app_loader.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <sstream>

namespace stamen {

namespace fs = std::filesystem;

std::vector<fs::path> default_app_search_path() {
  std::vector<fs::path> out;
  if (const char* env = std::getenv("STAMEN_APP_PATH")) {
    std::stringstream ss{env};
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty()) out.emplace_back(dir);
  }
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back(exe.parent_path().parent_path() / "lib");
    // An installed Stamen: apps beside it, in lib/stamen/apps.
    out.push_back(exe.parent_path().parent_path() / "lib" / "stamen" / "apps");
  }
  return out;
}

expected<fs::path> find_app_library(const std::string& library, const std::vector<fs::path>& path) {
  auto file = "lib" + library + ".so";
  std::string tried;
  for (auto& dir : path) {
    auto candidate = dir / file;
    std::error_code ec;
    tried += "\n  " + candidate.string();
    if (fs::is_regular_file(candidate, ec)) return candidate;
  }
  return fail(errc::io_error, "app library " + file + " not found; looked in:" + tried +
                                  "\n(build it, or add its directory to STAMEN_APP_PATH)");
}

expected<loaded_app> load_app_file(const fs::path& file) {
  void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr)
    return fail(errc::io_error, "cannot load app library '" + file.string() + "': " + dlerror());
  // Never dlclose: the app's code may still be on a stack or in a vtable at exit.
  std::shared_ptr<void> handle{h, [](void*) {}};
  auto entry = reinterpret_cast<app_entry_fn>(dlsym(h, app_entry_symbol));
  if (entry == nullptr)
    return fail(errc::io_error, "'" + file.string() + "' does not export " + app_entry_symbol +
                                    " (use STAMEN_APP(...))");
  loaded_app app;
  app.handle = std::move(handle);
  entry(&app.components);
  if (!app.components.make_client)
    return fail(errc::invalid_argument, "app library '" + file.string() + "' has no ClientApp factory");
  return app;
}

expected<loaded_app> load_app(const std::string& library, const std::vector<fs::path>& path) {
  auto file = find_app_library(library, path);
  if (!file) return file.error();
  return load_app_file(*file);
}

}  // namespace stamen
