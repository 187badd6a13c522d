// ChildProcess (private to the client): the RAII owner of LocalCluster's and `zwq local`'s
// children.
#include "child_process.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

namespace {

using namespace std::chrono_literals;
using zwq::detail::ChildProcess;
using Clock = std::chrono::steady_clock;

std::string sh() {
  auto path = zwq::detail::find_executable("sh");
  REQUIRE(path);
  return *path;
}

bool pid_alive(pid_t pid) {
  return ::kill(pid, 0) == 0;
}

}  // namespace

TEST_CASE("ChildProcess reports the exit code of its program", "[client]") {
  auto child = ChildProcess::spawn(sh(), {"-c", "exit 7"});
  REQUIRE(child.ok());
  CHECK(child.value().wait() == 7);
  CHECK_FALSE(child.value().running());
  CHECK(child.value().describe_exit() == "sh exited with status 7");
}

TEST_CASE("ChildProcess passes extra environment variables", "[client]") {
  zwq::detail::SpawnOptions options;
  options.env.push_back("ZWQ_TEST_VALUE=42");
  auto child = ChildProcess::spawn(sh(), {"-c", "test \"$ZWQ_TEST_VALUE\" = 42"}, options);
  REQUIRE(child.ok());
  CHECK(child.value().wait() == 0);
}

TEST_CASE("ChildProcess spawn of a missing program fails", "[client]") {
  auto child = ChildProcess::spawn("/nonexistent/zwq-nothing", {});
  REQUIRE_FALSE(child.ok());
  CHECK_THAT(child.error().message, Catch::Contains("/nonexistent/zwq-nothing"));
}

TEST_CASE("ChildProcess stop ends a running child with SIGTERM", "[client]") {
  auto child = ChildProcess::spawn(sh(), {"-c", "exec sleep 30"});
  REQUIRE(child.ok());
  CHECK(child.value().running());
  const auto start = Clock::now();
  CHECK(child.value().stop() == 128 + SIGTERM);
  CHECK(Clock::now() - start < 2s);
}

TEST_CASE("ChildProcess stop escalates to SIGKILL after the grace period", "[client]") {
  auto child = ChildProcess::spawn(sh(), {"-c", "trap '' TERM; while :; do sleep 0.05; done"});
  REQUIRE(child.ok());
  std::this_thread::sleep_for(100ms);  // let the shell install its trap
  CHECK(child.value().stop(200ms) == 128 + SIGKILL);
}

TEST_CASE("ChildProcess destruction leaves no process behind", "[client]") {
  pid_t pid = -1;
  {
    auto child = ChildProcess::spawn(sh(), {"-c", "exec sleep 30"});
    REQUIRE(child.ok());
    pid = child.value().pid();
    CHECK(pid_alive(pid));
  }
  CHECK_FALSE(pid_alive(pid));  // killed and reaped: not even a zombie
}

TEST_CASE("ChildProcess captures stdout until the child closes it", "[client]") {
  zwq::detail::SpawnOptions options;
  options.capture_stdout = true;
  auto child = ChildProcess::spawn(sh(), {"-c", "echo one; echo two"}, options);
  REQUIRE(child.ok());
  CHECK(child.value().read_all(5s) == "one\ntwo\n");
  CHECK(child.value().wait() == 0);
  auto plain = ChildProcess::spawn(sh(), {"-c", "exit 0"});
  REQUIRE(plain.ok());
  CHECK(plain.value().read_all(1s).empty());  // nothing captured: nothing to read
}

TEST_CASE("ChildProcess read_all stops a child that outlasts its timeout", "[client]") {
  zwq::detail::SpawnOptions options;
  options.capture_stdout = true;
  auto child = ChildProcess::spawn(sh(), {"-c", "echo early; exec sleep 30"}, options);
  REQUIRE(child.ok());
  const auto start = Clock::now();
  CHECK(child.value().read_all(300ms) == "early\n");
  CHECK(Clock::now() - start < 10s);
  CHECK_FALSE(child.value().running());
  CHECK(child.value().exit_status() == 128 + SIGTERM);
}
