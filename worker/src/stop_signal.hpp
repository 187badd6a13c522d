// StopSignal: "please return from run()" from any thread or a signal handler, as a flag plus a
// self-pipe that wakes the poll loop at once instead of at its next timeout.
#pragma once

#include <atomic>

namespace zwq::worker {

// Thread safety: request() and requested() from anywhere (request() is async-signal-safe);
// the fd is polled by the worker loop. Throws SetupError if no pipe can be made.
class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  void request() noexcept;
  bool requested() const noexcept { return requested_.load(std::memory_order_relaxed); }
  // Readable once request() was called: add it to a poll set.
  int fd() const { return fds_[0]; }
  // Sleeps up to `ms`; returns early (true) if a stop is or gets requested.
  bool sleep_for(int ms) const;

 private:
  std::atomic<bool> requested_{false};
  int fds_[2] = {-1, -1};
};

}  // namespace zwq::worker
