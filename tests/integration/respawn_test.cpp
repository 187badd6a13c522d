// zwq local (LocalCluster, zwq-worker --respawn) replaces a worker process that a signal killed,
// as multiprocessing.Pool replaces its workers: the cluster outlives kill -9 and a poison slice
// that kills every worker it reaches, and keeps its number of workers.
//   build/tests/zwq_integration_tests "[respawn]"
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "cluster.hpp"
#include "processes.hpp"

using namespace zwq;
using namespace zwq::test;
using namespace std::chrono_literals;

namespace {

// The pids of the workers the broker does not count as dead.
std::vector<pid_t> live_pids(Client& c) {
  std::vector<pid_t> out;
  auto ws = c.workers();
  if (!ws.ok()) return out;
  for (const WorkerStatus& w : ws.value()) {
    if (w.state != "dead") out.push_back(static_cast<pid_t>(w.pid));
  }
  return out;
}

bool has(const std::vector<pid_t>& pids, pid_t pid) {
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

}  // namespace

TEST_CASE(
    "respawn: zwq local replaces a worker killed by SIGKILL and the workers a poison slice "
    "kills, its job fails alone, and the next job's answer is exact on as many workers",
    "[integration][respawn]") {
  LocalClusterOptions o = cluster_options(2);
  o.broker_args = {"--heartbeat-ms", "50", "--liveness", "4"};
  LocalCluster cluster(o);
  Client& c = cluster.client();
  const std::vector<pid_t> first = live_pids(c);
  REQUIRE(first.size() == 2);

  REQUIRE(::kill(first[0], SIGKILL) == 0);
  // Its replacement registers, and the broker counts the killed one dead: two live workers,
  // the one left alone among them.
  CHECK(eventually(
      [&] {
        const auto now = live_pids(c);
        return now.size() == 2 && !has(now, first[0]) && has(now, first[1]);
      },
      20s));
  REQUIRE(cluster.check().ok());

  // Every worker that reaches slice 5 aborts: three lost attempts fail the job, and each dead
  // worker is replaced.
  JobRequest poison = JobRequest::range("abort_at", 0, 100).with("slice", 5);
  poison.slice_size = 1;
  auto r = c.run(poison, kJobTimeout);
  REQUIRE_FALSE(r.ok());
  INFO(r.error().message);
  CHECK(r.error().code == ErrorCode::kKernelFailed);
  CHECK(r.error().message.find("3 times") != std::string::npos);
  REQUIRE(cluster.check().ok());
  CHECK(eventually([&] { return live_pids(c).size() == 2; }, 20s));

  JobRequest pi = JobRequest::range("pi", 0, 10'000'000);
  pi.slice_size = 100'000;
  auto next = c.run(pi, kJobTimeout);
  REQUIRE(next.ok());
  CHECK(std::abs(next.value().value - 3.141592653589793) < 1e-9);
  // The cluster still has two workers, neither of them the first pair's killed one.
  const auto last = live_pids(c);
  CHECK(last.size() == 2);
  CHECK_FALSE(has(last, first[0]));
}
