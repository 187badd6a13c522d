#include "respawn.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <cstring>

namespace zwq::worker {

bool RespawnPolicy::replaces(int status) {
  return WIFSIGNALED(status);
}

RespawnPolicy::Millis RespawnPolicy::delay(Millis lived) {
  if (lived >= kYoung) {
    next_ = Millis(0);
    return next_;
  }
  const Millis now = next_;
  next_ = now == Millis(0) ? kFirstDelay : std::min(now * 2, kMaxDelay);
  return now;
}

std::string describe_wait_status(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + ::strsignal(sig) + ")";
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended with wait status " + std::to_string(status);
}

}  // namespace zwq::worker
