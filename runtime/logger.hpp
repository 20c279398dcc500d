#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <string>

namespace stamen {

/// Writes log lines in Flower's format ("INFO :      text"). A logger is a
/// small handle passed explicitly to whatever logs; copies share the stream.
class logger {
 public:
  /// Severity, lowest first; a logger writes lines at or above its level.
  enum class level {
    debug,    ///< "DEBUG": shown with `stamen run --verbose`
    info,     ///< "INFO": the default level
    warning,  ///< "WARNING": the level of `--quiet` (failed replies, kept arrays)
    error     ///< "ERROR"
  };

  /// Logs to std::clog at the process's default level (info, unless
  /// set_default_level changed it).
  logger();

  /// The level of default-constructed loggers (`stamen run --quiet` and
  /// `--verbose` set it, so that an app's own loggers follow too).
  static void set_default_level(level min);
  /// Logs to `out` (which must outlive every copy) lines of level `min` and above.
  logger(std::ostream& out, level min = level::info);

  /// Logs `text` at debug level (hidden at the default info level).
  void debug(const std::string& text) const { write(level::debug, text); }
  /// Logs `text` at info level: Flower's "INFO :      " lines.
  void info(const std::string& text) const { write(level::info, text); }
  /// Logs `text` at warning level (still shown under `--quiet`).
  void warn(const std::string& text) const { write(level::warning, text); }
  /// Logs `text` at error level.
  void error(const std::string& text) const { write(level::error, text); }

  /// A logger that discards everything (for tests and benchmarks).
  static logger silent();

  /// Writes `text` as one line with Flower's level prefix ("WARNING :   "),
  /// if `lv` is shown; thread-safe, copies share the lock.
  void write(level lv, const std::string& text) const;

  /// Whether a line of level `lv` is written (not below this logger's level).
  bool shows(level lv) const { return out_ != nullptr && lv >= min_; }

  /// While set, every logger writing on the calling thread also hands each
  /// line (prefix included) to `tee`: a superlink runs each run's ServerApp
  /// on a thread of its own and so keeps each run's log apart, for its
  /// submitter and for `stamen log`. {} unsets it.
  static void set_thread_tee(std::function<void(const std::string& line)> tee);

  /// A status line kept below the log on a terminal: while set, every line
  /// any logger writes to `out` first erases it and then draws it again
  /// (null: none). The command sets it only when `out` is a terminal.
  static void set_status_stream(std::ostream* out);
  /// While set, every warning and error line of the process (prefix
  /// included) is also handed to `sink` (a superlink keeps the recent
  /// ones for its dashboard). {} unsets it.
  static void set_warning_sink(std::function<void(const std::string& line)> sink);

  /// Draws `text` as the status line ("" erases it).
  static void set_status(const std::string& text);

  /// Writes a line already formatted elsewhere (a superlink's log line, as
  /// its submitter prints it) to `out`, keeping the status line below it.
  static void print_line(std::ostream& out, const std::string& line);

 private:
  std::ostream* out_;
  level min_;
  std::shared_ptr<std::mutex> mtx_;
};

}  // namespace stamen
