// When `zwq-worker --respawn` replaces a worker process, as multiprocessing.Pool replaces its
// workers: one that a signal killed (SIGKILL, the OOM killer, a kernel's crash) is replaced; one
// that exited is not (0: stopped or shut down; 1 or 2: a set-up failure a new one would repeat).
// The replacement starts at once after a worker that ran a while and after the first that died
// young; while they keep dying young, after a delay that doubles (100 ms up to 5 s), so that a
// worker that crashes at start does not spin. Time is passed in (how long the dead one ran); no
// clock, no sockets.
#pragma once

#include <chrono>
#include <string>

namespace zwq::worker {

class RespawnPolicy {
 public:
  using Millis = std::chrono::milliseconds;
  static constexpr Millis kYoung{10'000};  // a worker that died sooner died young
  static constexpr Millis kFirstDelay{100};
  static constexpr Millis kMaxDelay{5'000};

  // Whether a child that ended with waitpid() status `status` is replaced.
  static bool replaces(int status);
  // How long to wait before starting the replacement of a child that ran for `lived`.
  Millis delay(Millis lived);

 private:
  Millis next_{0};  // the delay after the next young death
};

// "exited with status N" or "was killed by signal N (Name)", for a waitpid() status.
std::string describe_wait_status(int status);

}  // namespace zwq::worker
