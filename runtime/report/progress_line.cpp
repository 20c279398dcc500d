#include "runtime/report/progress_line.hpp"

#include "runtime/format.hpp"
#include "runtime/logger.hpp"

namespace stamen {

namespace {

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

progress_line::progress_line(std::function<void(const std::string&)> draw) : draw_(std::move(draw)) {}

void progress_line::logger_status(const std::string& text) { logger::set_status(text); }

void progress_line::on_start(const std::string&, int num_rounds, const std::vector<std::string>&) {
  start_ = clock::now();
  total_ = num_rounds;
  draw();
}

void progress_line::on_round_start(int round, int num_rounds) {
  if (round_ > 0) ++done_;
  round_ = round;
  total_ = num_rounds;
  round_start_ = clock::now();
  phase_ = "train";
  sampled_ = replies_ = failures_ = 0;
  draw();
}

void progress_line::on_sampled(int, run_phase phase, size_t sampled, size_t) {
  phase_ = phase == run_phase::train ? "train" : "evaluate";
  sampled_ = sampled;
  replies_ = failures_ = 0;
  draw();
}

void progress_line::on_reply_accepted(int, run_phase, uint64_t) {
  ++replies_;
  draw();
}

void progress_line::on_reply_failed(int, run_phase, uint64_t, const std::string&) {
  ++failures_;
  draw();
}

void progress_line::on_version(const version_report& report, int num_versions) {
  versions_ = true;
  round_ = report.version;
  done_ = report.version;
  total_ = num_versions;
  replies_ = failures_ = 0;
  draw();
}

void progress_line::on_finished(const strategy_result&) { draw_(""); }

std::string progress_line::text() const {
  double elapsed = since(start_);
  std::string out = std::string{versions_ ? "version " : "round "} + std::to_string(round_) + "/" +
                    std::to_string(total_) + " " + phase_ + ": " + std::to_string(replies_) +
                    (sampled_ > 0 && !versions_ ? "/" + std::to_string(sampled_) : "") + " replies, " +
                    std::to_string(failures_) + " failures | " + format_double("%.1f", elapsed) + "s";
  // What is left, at the pace of the rounds done so far.
  if (done_ > 0 && total_ > done_)
    out += ", ~" + format_double("%.0f", elapsed / done_ * (total_ - done_)) + "s left";
  return out;
}

void progress_line::draw() { draw_(text()); }

}  // namespace stamen
