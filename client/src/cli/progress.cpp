#include "progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace zwq::cli {

namespace {

// A job shorter than this finishes without a bar: flashing one would only be noise.
constexpr std::chrono::milliseconds kShowAfter{1000};
// ~5 redraws a second: smooth enough to watch, cheap on a slow terminal.
constexpr std::chrono::milliseconds kRedrawEvery{200};
constexpr int kBarWidth = 30;

// Columns of the terminal on stderr (80 if it cannot be told). A line redrawn in place must fit
// one row: "\r" goes back to the start of the last row only.
std::size_t columns() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

}  // namespace

ProgressBar::ProgressBar(bool enabled) : enabled_(enabled), start_(Clock::now()) {}

void ProgressBar::update(const JobStatus& s) {
  if (!enabled_ || s.total == 0) return;
  const auto now = Clock::now();
  if (now - start_ < kShowAfter || (drawn_ && now - last_draw_ < kRedrawEvery)) return;
  last_draw_ = now;
  if (s.waiting != waiting_) {
    // Why it waits goes on a line of its own, once: it may be longer than a row.
    waiting_ = s.waiting;
    if (!waiting_.empty()) {
      clear();
      std::fprintf(stderr, "zwq: job %s waits: %s\n", s.job_id.c_str(), waiting_.c_str());
    }
  }
  const double frac = static_cast<double>(s.done) / static_cast<double>(s.total);
  const int filled = static_cast<int>(frac * kBarWidth);
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = static_cast<double>(s.done) / secs;
  std::string bar(filled, '#');
  bar.resize(kBarWidth, '-');
  char tail[48] = "ETA ?";
  if (!s.waiting.empty()) {
    std::snprintf(tail, sizeof tail, "waiting for a worker");
  } else if (rate > 0) {
    std::snprintf(tail, sizeof tail, "ETA %.1fs", static_cast<double>(s.total - s.done) / rate);
  }
  char line[256];
  std::snprintf(line, sizeof line, "[%s] %llu/%llu slices  %.0f slices/s  %s", bar.c_str(),
                static_cast<unsigned long long>(s.done), static_cast<unsigned long long>(s.total),
                rate, tail);
  std::string shown(line);
  const std::size_t width = columns();
  if (shown.size() >= width) shown.resize(width > 1 ? width - 1 : 0);
  std::fprintf(stderr, "\r\033[K%s", shown.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace zwq::cli
