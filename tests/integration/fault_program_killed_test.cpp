// Fault test: a program using SharedArray and LocalCluster is killed before its destructors run
// (kill -9, or Ctrl-C reaching its whole process group). Its tracker process removes the shared
// array it owned and the cluster's directory, keeps the array it released, and says on stderr
// what it removed.
//   build/tests/zwq_integration_tests "fault: a program killed*"
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cluster.hpp"
#include "processes.hpp"
#include "shm_tracker.hpp"
#include "test_dir.hpp"
#include "zwq/shared_array.hpp"

using namespace zwq;
using namespace zwq::test;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

}  // namespace

TEST_CASE(
    "fault: a program killed before its destructors ran leaves no shared array or cluster "
    "directory behind",
    "[integration][fault]") {
  const bool ctrl_c = GENERATE(false, true);
  INFO((ctrl_c ? "SIGINT to the process group" : "SIGKILL to the program"));
  TestDir dir("killed");
  const std::string ready = dir.path() + "/ready";
  const std::string log = dir.path() + "/stderr";
  const std::string name = unique_name("killed");
  const std::string array = "/dev/shm/" + name;
  const std::string kept = array + "-kept";
  auto program = detail::ChildProcess::spawn(
      std::string(ZWQ_TEST_BUILD_DIR) + "/tests/zwq_test_killed_program",
      {ready, log, name, ZWQ_TEST_BIN_DIR});
  REQUIRE(program.ok());
  REQUIRE(eventually([&] { return exists(ready) || !program.value().running(); }));
  INFO("its stderr: " << read_text(log));
  REQUIRE(program.value().running());
  std::string cluster_dir = read_text(ready);
  REQUIRE(!cluster_dir.empty());
  cluster_dir.pop_back();  // '\n'
  REQUIRE(exists(array));
  REQUIRE(exists(array + ".zwq-meta"));
  REQUIRE(exists(kept));
  REQUIRE(exists(cluster_dir + "/sock/control"));

  const pid_t pid = program.value().pid();
  const auto killed_at = std::chrono::steady_clock::now();
  if (ctrl_c) {
    ::kill(-pid, SIGINT);  // the program leads its own group: what a terminal's Ctrl-C does
  } else {
    ::kill(pid, SIGKILL);
  }
  REQUIRE(program.value().wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(10)));
  CHECK(program.value().exit_status() == 128 + (ctrl_c ? SIGINT : SIGKILL));

  CHECK(eventually([&] { return !exists(array); }, std::chrono::seconds(10)));
  CHECK_FALSE(exists(array + ".zwq-meta"));
  CHECK(eventually([&] { return !exists(cluster_dir); }, std::chrono::seconds(10)));
  std::printf("figure: %s: its shared array and cluster directory were removed %.0f ms later\n",
              ctrl_c ? "Ctrl-C on the process group" : "kill -9", ms_since(killed_at));
  // What the program released is its user's to keep.
  CHECK(exists(kept));
  CHECK(exists(kept + ".zwq-meta"));
  // The tracker names what it removed (and nothing else: the kept array is not mentioned).
  CHECK(eventually([&] { return read_text(log).find(array + ",") != std::string::npos; },
                   std::chrono::seconds(10)));
  CHECK(read_text(log).find(kept) == std::string::npos);
  CHECK(ShmSegment::remove(name + "-kept").ok());
}

TEST_CASE("fault: a program that exec'd another keeps its shared arrays: it has not ended",
          "[integration][fault]") {
  TestDir dir("exec");
  const std::string ready = dir.path() + "/ready";
  const std::string name = unique_name("exec");
  const std::string array = "/dev/shm/" + name;
  auto program = detail::ChildProcess::spawn(
      std::string(ZWQ_TEST_BUILD_DIR) + "/tests/zwq_test_killed_program",
      {ready, dir.path() + "/stderr", name, ZWQ_TEST_BIN_DIR, "--exec"});
  REQUIRE(program.ok());
  const pid_t pid = program.value().pid();
  pid_t tracker = 0;
  REQUIRE(eventually([&] {
    for (pid_t p : descendants(pid)) {
      if (comm_of(p) == "zwq-tracker") tracker = p;
    }
    return tracker != 0;
  }));
  REQUIRE(eventually([&] { return comm_of(pid) == "sleep"; }));  // exec'd: the socket closed
  // The tracker saw the socket close, waited for its owner to end, and gave up on it.
  CHECK(eventually([&] { return ended(tracker); }, detail::kOwnerGrace + std::chrono::seconds(10)));
  CHECK(exists(array));
  CHECK(exists(array + ".zwq-meta"));
  program.value().stop(std::chrono::milliseconds(0));
  CHECK(ShmSegment::remove(name).ok());
  CHECK(ShmSegment::remove(name + "-kept").ok());
}

TEST_CASE("fault: a program that cannot find zwq-tracker still runs, untracked, and says so",
          "[integration][fault]") {
  TestDir dir("untracked");
  // A copy of the program where no zwq-tracker is beside it, under it, on ZWQ_BIN_DIR or PATH.
  const std::string copy = dir.path() + "/killed_program";
  std::filesystem::copy_file(std::string(ZWQ_TEST_BUILD_DIR) + "/tests/zwq_test_killed_program",
                             copy);
  const std::string ready = dir.path() + "/ready";
  const std::string name = unique_name("untracked");
  detail::SpawnOptions spawn;
  spawn.env = {"ZWQ_BIN_DIR=" + dir.path(), "PATH=/usr/bin:/bin"};
  auto program = detail::ChildProcess::spawn(
      copy, {ready, dir.path() + "/stderr", name, ZWQ_TEST_BIN_DIR}, spawn);
  REQUIRE(program.ok());
  // It made its arrays, started its cluster and summed through it.
  REQUIRE(eventually([&] { return exists(ready) || !program.value().running(); }));
  INFO("its stderr: " << read_text(dir.path() + "/stderr"));
  REQUIRE(program.value().running());
  for (pid_t p : descendants(program.value().pid())) CHECK(comm_of(p) != "zwq-tracker");
  CHECK_THAT(read_text(dir.path() + "/stderr"), Catch::Contains("zwq-tracker not found"));
  program.value().signal(SIGKILL);
  program.value().wait();
  // Nothing removes what it left (as before the tracker): the test does.
  CHECK(exists("/dev/shm/" + name));
  CHECK(ShmSegment::remove(name).ok());
  CHECK(ShmSegment::remove(name + "-kept").ok());
  std::string cluster_dir = read_text(ready);
  cluster_dir.pop_back();
  std::error_code ec;
  std::filesystem::remove_all(cluster_dir, ec);
}
