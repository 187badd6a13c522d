// The priority LocalCluster (zwq local) gives its processes: workers add worker_nice to their
// nice value, every thread of theirs, so that the broker and the client they wait on run first on
// shared cores; the broker keeps the caller's.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cluster.hpp"
#include "command.hpp"

using namespace zwq::test;

namespace {

// The nice value of every thread of `pid`, from /proc/PID/task/TID/stat (field 19).
std::vector<int> thread_nices(pid_t pid) {
  std::vector<int> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(task.path() / "stat");
    std::string line;
    std::getline(in, line);
    // The command name (field 2) may hold spaces: count the fields after its closing paren.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    for (int f = 3; f <= 19 && rest >> field; ++f) {
      if (f == 19) out.push_back(std::stoi(field));
    }
  }
  return out;
}

int own_nice() {
  errno = 0;
  return ::getpriority(PRIO_PROCESS, 0);
}

}  // namespace

TEST_CASE("local cluster runs every worker thread at worker_nice above the caller, the broker not",
          "[integration]") {
  const int add = GENERATE(10, 3, 0);
  zwq::LocalClusterOptions o = cluster_options(2);
  o.worker_nice = add;
  zwq::LocalCluster cluster(o);
  auto workers = cluster.client().workers();
  REQUIRE(workers.ok());
  REQUIRE(workers.value().size() == 2);
  const int expected = std::min(19, own_nice() + add);
  for (const auto& w : workers.value()) {
    INFO("worker " << w.worker_id);
    const auto nices = thread_nices(static_cast<pid_t>(w.pid));
    REQUIRE(nices.size() >= 2);  // its own thread and ZeroMQ's at least
    for (const int n : nices) CHECK(n == expected);
  }
  for (const int n : thread_nices(static_cast<pid_t>(cluster.client().info().pid))) {
    CHECK(n == own_nice());
  }
}

TEST_CASE("zwq-worker refuses a --nice outside 0-19 before it starts", "[integration]") {
  const std::string worker = std::string(ZWQ_TEST_BIN_DIR) + "/zwq-worker";
  for (const char* bad : {"-1", "20", "x"}) {
    INFO("--nice " << bad);
    auto out = run_command(worker + " --broker ipc:///nonexistent/zwq --nice " + bad + " 2>&1");
    CHECK(out.exit_code == 2);
    CHECK_THAT(out.out, Catch::Contains("--nice"));
  }
}
