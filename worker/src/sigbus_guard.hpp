// Surviving a truncated mapping: a file that shrinks after it was mapped makes the next read of
// a page past its new end raise SIGBUS, which would kill the worker. The executor checks sizes
// before every slice, but a file can still be truncated while a kernel runs; this guard turns
// that SIGBUS into an error outcome for the slice.
//
// A SIGBUS outside a guarded call goes to the handler that was there before (by default the
// process dies with a core dump).
// Thread safety: each thread has its own guard; install_sigbus_handler() is thread-safe.
#pragma once

#include <csetjmp>
#include <csignal>

namespace zwq::worker {

// Installs the process-wide SIGBUS handler unless it is in place already (someone, e.g. a test
// framework, may have replaced it since). Cheap enough to call once per executor.
void install_sigbus_handler();

namespace detail {
struct SigbusJump {
  sigjmp_buf env;
  volatile std::sig_atomic_t armed = 0;
};
SigbusJump& sigbus_jump();  // this thread's
}  // namespace detail

// Calls fn() and returns true, or returns false when fn was cut short by SIGBUS. A cut-short fn
// is abandoned mid-way (no unwinding): it must only compute over memory and plain outputs, as
// kernels do. install_sigbus_handler() must have been called.
template <typename F>
bool call_catching_sigbus(F&& fn) {
  detail::SigbusJump& jump = detail::sigbus_jump();
  // savemask = 0: no system call per slice. The handler runs with SA_NODEFER, so SIGBUS is not
  // left blocked after the jump.
  if (sigsetjmp(jump.env, 0) != 0) {
    jump.armed = 0;
    return false;
  }
  jump.armed = 1;
  fn();
  jump.armed = 0;
  return true;
}

}  // namespace zwq::worker
