#include "runtime/logger.hpp"

#include <iostream>

namespace stamen {

namespace {

thread_local std::function<void(const std::string&)> tee_fn;

}  // namespace

void logger::set_thread_tee(std::function<void(const std::string& line)> tee) { tee_fn = std::move(tee); }

logger::logger() : logger(std::clog) {}

logger::logger(std::ostream& out, level min)
    : out_(&out), min_(min), mtx_(std::make_shared<std::mutex>()) {}

logger logger::silent() {
  logger l;
  l.out_ = nullptr;
  return l;
}

void logger::write(level lv, const std::string& text) const {
  if (out_ == nullptr || lv < min_) return;
  // Flower pads the level name to a fixed width before the message.
  const char* prefix = "INFO :      ";
  switch (lv) {
    case level::debug: prefix = "DEBUG :     "; break;
    case level::info: break;
    case level::warning: prefix = "WARNING :   "; break;
    case level::error: prefix = "ERROR :     "; break;
  }
  {
    std::lock_guard<std::mutex> guard{*mtx_};
    *out_ << prefix << text << '\n' << std::flush;
  }
  if (tee_fn) tee_fn(prefix + text);
}

}  // namespace stamen
