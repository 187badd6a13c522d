// Fault tests: workers killed with SIGKILL mid-job — one at a random moment, 20 times; then all of
// them at once. Real processes, sockets and results; every result must be bitwise the fault-free
// one. The measured figures (kill -> slices requeued, time lost, slices handed out again) are
// printed as "figure:" lines for docs/RELIABILITY.md:
//   build/tests/zwq_integration_tests "fault: kill*"
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <random>

#include "processes.hpp"

using namespace zwq;
using namespace zwq::test;

namespace {

// Heartbeats every 50 ms, dead after 4 missed: a killed worker is found within ~250 ms.
const std::vector<std::string> kBrokerArgs = {
    "--heartbeat-ms",   "50",   "--liveness",       "4",
    "--lease-floor-ms", "1000", "--lease-first-ms", "10000"};
const std::vector<std::string> kWorkerArgs = {"--credit", "16"};
constexpr std::size_t kWorkers = 3;

// pi by the midpoint rule over 2e9 points in 10,000 slices: a sum (folded in slice order, so
// any fault that loses or doubles a slice changes the bits), ~1 s on two cores.
JobRequest pi_job(const std::string& id) {
  JobRequest req = JobRequest::range("pi", 0, 2'000'000'000);
  req.slice_size = 200'000;
  req.job_id = id;
  return req;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Cluster {
  TestDir dir{"killed"};
  BrokerProcess broker{dir, kBrokerArgs};
  std::optional<WorkerProcesses> workers;
  std::optional<Client> client;

  Cluster() {
    broker.start();
    workers.emplace(broker.address());
    for (std::size_t i = 0; i < kWorkers; ++i) workers->add(kWorkerArgs);
    auto c = Client::connect(ClientOptions{.broker = broker.address()});
    if (!c.ok()) throw std::runtime_error(c.error().to_string());
    client.emplace(std::move(c).value());
    if (!wait_for_workers(*client, kWorkers)) throw std::runtime_error("workers did not register");
  }
  // The fault-free result and how long it took.
  std::pair<JobResult, double> reference() {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = client->run(pi_job("reference"), kJobTimeout);
    if (!r.ok()) throw std::runtime_error(r.error().to_string());
    return {std::move(r).value(), ms_since(t0)};
  }
};

}  // namespace

TEST_CASE(
    "fault: kill -9 of a random worker at a random moment, 20 rounds of 10,000 slices, "
    "each result bitwise the fault-free one",
    "[integration][fault]") {
  Cluster c;
  const auto [reference, reference_ms] = c.reference();
  REQUIRE(reference.merged.n == 2'000'000'000);

  std::random_device seed_source;
  const unsigned seed = seed_source();
  INFO("random seed " << seed);
  std::mt19937 rng(seed);
  std::vector<double> detect_ms, job_ms;
  std::vector<std::uint64_t> requeued;
  for (int round = 0; round < 20; ++round) {
    INFO("round " << round);
    const auto start = std::chrono::steady_clock::now();
    auto job = c.client->submit(pi_job("round-" + std::to_string(round)));
    REQUIRE(job.ok());
    // A random moment: when a random share (5-80 %) of the slices is done.
    const auto target = std::uniform_int_distribution<std::uint64_t>(500, 8000)(rng);
    REQUIRE(eventually([&] {
      auto st = job.value().progress();
      return st.ok() && st.value().done >= target;
    }));

    const auto running = c.workers->running();
    REQUIRE(running.size() == kWorkers);
    const std::size_t victim =
        running[std::uniform_int_distribution<std::size_t>(0, running.size() - 1)(rng)];
    const auto killed = std::chrono::steady_clock::now();
    c.workers->at(victim).signal(SIGKILL);

    // Detection: the broker takes the dead worker's slices back (retried grows).
    std::uint64_t retried = 0;
    const bool seen = eventually(
        [&] {
          auto st = job.value().progress();
          if (!st.ok()) return false;
          retried = st.value().retried;
          return retried > 0 || job_state_final(st.value().state);
        },
        std::chrono::seconds(10));
    REQUIRE(seen);
    if (retried > 0) detect_ms.push_back(ms_since(killed));

    auto r = job.value().wait(kJobTimeout);
    REQUIRE(r.ok());
    CHECK(bits_of(r.value().value) == bits_of(reference.value));
    CHECK(r.value().merged.n == reference.merged.n);
    const JobStatus st = job.value().last_status();
    CHECK(st.done == st.total);
    requeued.push_back(st.retried);
    job_ms.push_back(ms_since(start));
    CHECK(c.workers->at(victim).wait() == 128 + SIGKILL);

    c.workers->add(kWorkerArgs);  // the next round starts with kWorkers again
    REQUIRE(wait_for_workers(*c.client, kWorkers));
  }
  CHECK(detect_ms.size() >= 15);  // a kill that found its worker idle shows no requeue
  std::printf(
      "figure: worker killed (kill -9, heartbeat 50 ms x liveness 4, credit 16, 3 workers, "
      "10,000-slice pi jobs of %.0f ms without a fault): kill -> slices requeued median %.0f "
      "ms, max %.0f ms (%zu of 20 rounds); slices handed out again median %.0f, max %.0f; job "
      "time with a kill median %.0f ms; 20/20 results bitwise equal\n",
      reference_ms, median(detect_ms),
      detect_ms.empty() ? 0.0 : *std::max_element(detect_ms.begin(), detect_ms.end()),
      detect_ms.size(), median(std::vector<double>(requeued.begin(), requeued.end())),
      static_cast<double>(*std::max_element(requeued.begin(), requeued.end())), median(job_ms));
}

TEST_CASE("fault: kill -9 of every worker mid-job, then new workers: the job completes exactly",
          "[integration][fault]") {
  Cluster c;
  const auto [reference, reference_ms] = c.reference();
  auto job = c.client->submit(pi_job("orphaned"));
  REQUIRE(job.ok());
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(0.3 * reference_ms));
  for (std::size_t i : c.workers->running()) c.workers->at(i).signal(SIGKILL);
  for (std::size_t i = 0; i < c.workers->size(); ++i) c.workers->at(i).wait();
  const auto killed = std::chrono::steady_clock::now();
  REQUIRE(wait_for_workers(*c.client, 0, std::chrono::seconds(10)));
  const double detect = ms_since(killed);
  auto stalled = job.value().progress();
  REQUIRE(stalled.ok());
  CHECK(stalled.value().state == JobState::kRunning);  // waiting, not failed
  CHECK(stalled.value().inflight == 0);
  CHECK(stalled.value().done < stalled.value().total);

  const auto restarted = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < kWorkers; ++i) c.workers->add(kWorkerArgs);
  auto r = job.value().wait(kJobTimeout);
  REQUIRE(r.ok());
  CHECK(bits_of(r.value().value) == bits_of(reference.value));
  CHECK(job.value().last_status().done == job.value().last_status().total);
  std::printf(
      "figure: all workers killed: every worker declared dead %.0f ms after the kills; the job "
      "finished %.0f ms after new workers were started (%llu slices handed out again); result "
      "bitwise equal\n",
      detect, ms_since(restarted),
      static_cast<unsigned long long>(job.value().last_status().retried));
}
