#include "progress.hpp"

#include <cstdio>
#include <string>

namespace zwq::cli {

namespace {

// A job shorter than this finishes without a bar: flashing one would only be noise.
constexpr std::chrono::milliseconds kShowAfter{1000};
// ~5 redraws a second: smooth enough to watch, cheap on a slow terminal.
constexpr std::chrono::milliseconds kRedrawEvery{200};
constexpr int kBarWidth = 30;

}  // namespace

ProgressBar::ProgressBar(bool enabled) : enabled_(enabled), start_(Clock::now()) {}

void ProgressBar::update(const JobStatus& s) {
  if (!enabled_ || s.total == 0) return;
  const auto now = Clock::now();
  if (now - start_ < kShowAfter || (drawn_ && now - last_draw_ < kRedrawEvery)) return;
  last_draw_ = now;
  const double frac = static_cast<double>(s.done) / static_cast<double>(s.total);
  const int filled = static_cast<int>(frac * kBarWidth);
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = static_cast<double>(s.done) / secs;
  std::string bar(filled, '#');
  bar.resize(kBarWidth, '-');
  std::string tail = "ETA ?";
  if (!s.waiting.empty()) {
    tail = "waiting: " + s.waiting;
  } else if (rate > 0) {
    char eta[32];
    std::snprintf(eta, sizeof eta, "ETA %.1fs", static_cast<double>(s.total - s.done) / rate);
    tail = eta;
  }
  std::fprintf(stderr, "\r\033[K[%s] %llu/%llu slices  %.0f slices/s  %s", bar.c_str(),
               static_cast<unsigned long long>(s.done), static_cast<unsigned long long>(s.total),
               rate, tail.c_str());
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
