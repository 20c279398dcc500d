#include "runtime/logger.hpp"

#include <atomic>
#include <iostream>

namespace stamen {

namespace {

thread_local std::function<void(const std::string&)> tee_fn;

// The status line: one per process, on one stream, drawn after each line
// written there. "\r\033[K" returns to the start of the line and erases it.
std::mutex status_mtx;
std::ostream* status_out = nullptr;
std::string status_text;
constexpr const char* erase_line = "\r\033[K";

std::atomic<int> default_level{static_cast<int>(logger::level::info)};

std::mutex sink_mtx;
std::function<void(const std::string&)> warning_sink;

}  // namespace

void logger::set_status_stream(std::ostream* out) {
  std::lock_guard<std::mutex> guard{status_mtx};
  if (status_out != nullptr && !status_text.empty()) *status_out << erase_line << std::flush;
  status_out = out;
  status_text.clear();
}

void logger::set_status(const std::string& text) {
  std::lock_guard<std::mutex> guard{status_mtx};
  if (status_out == nullptr || text == status_text) return;
  status_text = text;
  *status_out << erase_line << status_text << std::flush;
}

void logger::print_line(std::ostream& out, const std::string& line) {
  std::lock_guard<std::mutex> guard{status_mtx};
  if (&out == status_out) out << erase_line << line << '\n' << status_text << std::flush;
  else out << line << '\n' << std::flush;
}

void logger::set_thread_tee(std::function<void(const std::string& line)> tee) { tee_fn = std::move(tee); }

logger::logger() : logger(std::clog, static_cast<level>(default_level.load())) {}

void logger::set_default_level(level min) { default_level = static_cast<int>(min); }

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
    std::lock_guard<std::mutex> status{status_mtx};
    if (out_ == status_out) {
      *out_ << erase_line << prefix << text << '\n' << status_text << std::flush;
    } else {
      std::lock_guard<std::mutex> guard{*mtx_};
      *out_ << prefix << text << '\n' << std::flush;
    }
  }
  if (tee_fn) tee_fn(prefix + text);
  if (lv >= level::warning) {
    std::lock_guard<std::mutex> guard{sink_mtx};
    if (warning_sink) warning_sink(prefix + text);
  }
}

void logger::set_warning_sink(std::function<void(const std::string& line)> sink) {
  std::lock_guard<std::mutex> guard{sink_mtx};
  warning_sink = std::move(sink);
}

}  // namespace stamen
