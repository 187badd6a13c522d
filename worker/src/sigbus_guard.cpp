#include "sigbus_guard.hpp"

#include <mutex>

namespace zwq::worker {
namespace detail {

// Initial-exec TLS in our own binary: safe to touch from a signal handler.
SigbusJump& sigbus_jump() {
  static thread_local SigbusJump jump;
  return jump;
}

}  // namespace detail

namespace {

std::mutex install_mutex;
struct sigaction previous_action {};  // what SIGBUS did before us, for faults not ours

void on_sigbus(int) {
  detail::SigbusJump& jump = detail::sigbus_jump();
  if (jump.armed) siglongjmp(jump.env, 1);
  // Not ours: hand SIGBUS back to whoever had it (by default: death with a core dump); the
  // faulting access repeats on return and meets that handler.
  sigaction(SIGBUS, &previous_action, nullptr);
}

}  // namespace

void install_sigbus_handler() {
  std::lock_guard<std::mutex> lock(install_mutex);
  struct sigaction current {};
  sigaction(SIGBUS, nullptr, &current);
  if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == on_sigbus) return;
  struct sigaction sa {};
  sa.sa_handler = on_sigbus;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_NODEFER;
  sigaction(SIGBUS, &sa, &previous_action);
}

}  // namespace zwq::worker
