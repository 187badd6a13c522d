// Private to `zwq`: the progress bar of a running job on stderr.
#pragma once

#include <chrono>
#include <string>

#include "zwq/messages.hpp"

namespace zwq::cli {

// `[#####-----] 512/1024 slices  350 slices/s  ETA 1.5s`, redrawn in place on stderr (cut to the
// terminal's width). Shows up only when enabled (stderr is a terminal and the output is not JSON)
// and the job has run for a second, so quick jobs print nothing extra; redrawn at most 5 times a
// second. While no worker can take the job, the bar says "waiting for a worker", and why it waits
// (JobStatus.waiting) is printed once on a line of its own, again whenever the reason changes.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled);
  ~ProgressBar() { clear(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void update(const JobStatus& status);
  // Erases the bar (if drawn), so that what follows starts on a clean line.
  void clear();

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  bool drawn_ = false;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  std::string waiting_;  // the reason last printed
};

}  // namespace zwq::cli
