// RespawnPolicy: which dead worker processes `zwq-worker --respawn` replaces, and how soon.
#include "respawn.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>

using zwq::worker::RespawnPolicy;
using Millis = std::chrono::milliseconds;

namespace {

// The waitpid() status of a child that ran `body`.
template <typename F>
int status_of(F body) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    body();
    std::_Exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

}  // namespace

TEST_CASE(
    "respawn replaces a worker process a signal killed, not one that exited, whatever its code",
    "[worker][respawn]") {
  const int killed = status_of([] { ::raise(SIGKILL); });
  const int aborted = status_of([] { std::abort(); });
  const int stopped = status_of([] { std::_Exit(0); });
  const int setup = status_of([] { std::_Exit(1); });
  CHECK(RespawnPolicy::replaces(killed));
  CHECK(RespawnPolicy::replaces(aborted));
  CHECK_FALSE(RespawnPolicy::replaces(stopped));
  CHECK_FALSE(RespawnPolicy::replaces(setup));
  CHECK(zwq::worker::describe_wait_status(killed) == "was killed by signal 9 (Killed)");
  CHECK(zwq::worker::describe_wait_status(setup) == "exited with status 1");
}

TEST_CASE(
    "respawn starts a replacement at once after a worker that ran a while, and backs off from "
    "100 ms to 5 s while they die young",
    "[worker][respawn]") {
  RespawnPolicy p;
  CHECK(p.delay(Millis(60'000)) == Millis(0));
  CHECK(p.delay(Millis(50)) == Millis(0));  // the first young death: at once
  CHECK(p.delay(Millis(50)) == Millis(100));
  CHECK(p.delay(Millis(50)) == Millis(200));
  CHECK(p.delay(Millis(50)) == Millis(400));
  for (int i = 0; i < 10; ++i) (void)p.delay(Millis(50));
  CHECK(p.delay(Millis(50)) == Millis(5'000));         // capped
  CHECK(p.delay(RespawnPolicy::kYoung) == Millis(0));  // one that lived: reset
  CHECK(p.delay(Millis(50)) == Millis(0));
  CHECK(p.delay(Millis(50)) == Millis(100));
}
