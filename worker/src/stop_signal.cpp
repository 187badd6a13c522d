#include "stop_signal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "zwq/status.hpp"

namespace zwq::worker {

static_assert(std::atomic<bool>::is_always_lock_free, "request() must be async-signal-safe");

StopSignal::StopSignal() {
  if (::pipe2(fds_, O_NONBLOCK | O_CLOEXEC) != 0) {
    throw SetupError(std::string("cannot create the stop pipe: ") + std::strerror(errno));
  }
}

StopSignal::~StopSignal() {
  ::close(fds_[0]);
  ::close(fds_[1]);
}

void StopSignal::request() noexcept {
  const int saved = errno;  // a signal handler must leave errno as it found it
  requested_.store(true, std::memory_order_relaxed);
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(fds_[1], &byte, 1);  // full pipe: already woken
  errno = saved;
}

bool StopSignal::sleep_for(int ms) const {
  if (requested()) return true;
  pollfd p{fds_[0], POLLIN, 0};
  ::poll(&p, 1, ms);  // EINTR: return early; the caller re-checks
  return requested();
}

}  // namespace zwq::worker
