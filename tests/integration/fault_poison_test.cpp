// Fault test: a poison slice — a kernel that kills its worker (std::abort) on one slice. The job
// must fail after --max-lost-attempts (3) lost attempts, no more, naming the job, the slice, the
// kernel and how the last worker was lost; the broker and the other jobs go on.
//   build/tests/zwq_integration_tests "fault: a poison*"
#include <catch2/catch.hpp>
#include <cstdio>

#include "processes.hpp"

using namespace zwq;
using namespace zwq::test;

TEST_CASE(
    "fault: a poison slice that kills its worker fails its job after 3 lost attempts, "
    "naming it, and the next job succeeds",
    "[integration][fault]") {
  TestDir dir("poison");
  BrokerProcess broker(dir, {"--heartbeat-ms", "50", "--liveness", "4"});
  broker.start();
  WorkerProcesses workers(broker.address());
  constexpr std::size_t kWorkers = 4;
  for (std::size_t i = 0; i < kWorkers; ++i) workers.add({"--credit", "8"});
  auto client = Client::connect(ClientOptions{.broker = broker.address()});
  REQUIRE(client.ok());
  REQUIRE(wait_for_workers(client.value(), kWorkers));

  JobRequest poison = JobRequest::range("abort_at", 0, 2000).with("slice", 500);
  poison.slice_size = 1;
  poison.job_id = "poison";
  const auto start = std::chrono::steady_clock::now();
  auto r = client.value().run(poison, kJobTimeout);
  const double fail_ms = ms_since(start);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kKernelFailed);
  CHECK_THAT(r.error().message, Catch::Contains("job poison") && Catch::Contains("slice 500 ") &&
                                    Catch::Contains("kernel 'abort_at'") &&
                                    Catch::Contains("3 times") && Catch::Contains(") lost: "));
  INFO(r.error().message);

  // Exactly three workers died, each of the abort (SIGABRT): no fourth attempt was made.
  CHECK(eventually([&] { return workers.running().size() == kWorkers - 3; },
                   std::chrono::seconds(5)));
  std::size_t aborted = 0;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    if (!workers.at(i).running()) aborted += workers.at(i).exit_status() == 128 + SIGABRT;
  }
  CHECK(aborted == 3);

  // The broker is up and the next job runs on the worker that is left.
  CHECK(broker.process().running());
  JobRequest fine = JobRequest::range("pi", 0, 10'000'000);
  fine.slice_size = 100'000;
  auto next = client.value().run(fine, kJobTimeout);
  REQUIRE(next.ok());
  CHECK(std::abs(next.value().value - 3.141592653589793) < 1e-9);
  std::printf(
      "figure: poison slice (abort_at, heartbeat 50 ms x liveness 4, 4 workers): job "
      "failed after exactly 3 worker deaths, %.0f ms after submit; error: %s\n",
      fail_ms, r.error().message.c_str());
}
