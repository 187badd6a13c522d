// Several clients, streamed results, cancel and retried submits, end to end.
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "cluster.hpp"

using namespace zwq;
using namespace zwq::test;

TEST_CASE("clients: two clients with concurrent jobs each get their own result", "[integration]") {
  LocalCluster cluster(cluster_options(2));
  auto a = make_array<std::int64_t>("c1", 2'000'000);
  auto b = make_array<std::int64_t>("c2", 1'500'000);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = 1;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = 3;
  auto run_in_thread = [&](const DatasetRef& ref, double& out, std::string& err) {
    return std::thread([&, ref] {
      auto c = Client::connect(ClientOptions{.broker = cluster.address()});
      if (!c.ok()) {
        err = c.error().to_string();
        return;
      }
      JobRequest req;
      req.kernel = "sum";
      req.input = ref;
      req.slice_size = 10'000;
      auto r = c.value().run(req, kJobTimeout);
      if (!r.ok()) {
        err = r.error().to_string();
        return;
      }
      out = r.value().value;
    });
  };
  double ra = 0, rb = 0;
  std::string ea, eb;
  std::thread ta = run_in_thread(a.ref(), ra, ea);
  std::thread tb = run_in_thread(b.ref(), rb, eb);
  ta.join();
  tb.join();
  CHECK(ea.empty());
  CHECK(eb.empty());
  CHECK(ra == 2'000'000.0);
  CHECK(rb == 4'500'000.0);
}

TEST_CASE("clients: streamed slice results cover every slice exactly once", "[integration]") {
  LocalCluster cluster(cluster_options(2));
  auto a = make_array<double>("stream", 100'000);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<double>(i);
  JobRequest req = JobRequest::reduce("sum", a);
  req.slice_size = 1000;
  auto job = cluster.client().submit(req);
  REQUIRE(job.ok());
  std::set<std::uint64_t> seen;
  long double total = 0;
  for (const SliceResult& s : job.value().as_completed(kJobTimeout)) {
    CHECK(seen.insert(s.slice).second);
    CHECK(s.first == s.slice * 1000);
    total += s.partial.hi + s.partial.lo;
  }
  CHECK(seen.size() == 100);
  CHECK(static_cast<double>(total) == 99'999.0 * 100'000.0 / 2.0);
  auto r = job.value().wait(kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().value == 99'999.0 * 100'000.0 / 2.0);
}

TEST_CASE(
    "clients: an older job's slice results released past --max-finished-slices are refused "
    "by name, its result kept",
    "[integration]") {
  LocalClusterOptions o = cluster_options(1);
  o.broker_args = {"--max-finished-slices=30"};
  LocalCluster cluster(o);
  auto& c = cluster.client();
  JobRequest req = JobRequest::range("primes", 0, 2000);
  req.slice_size = 100;  // 20 slices per job: the second job's 20 take the first one's place
  auto first = c.submit(req);
  REQUIRE(first.ok());
  REQUIRE(first.value().wait(kJobTimeout).ok());
  auto second = c.submit(req);
  REQUIRE(second.ok());
  auto second_result = second.value().wait(kJobTimeout);
  REQUIRE(second_result.ok());
  CHECK(second_result.value().value == 303.0);

  // The first job's per-slice results are gone, and the stream says so rather than end early.
  auto released = first.value().next_result(kJobTimeout);
  REQUIRE_FALSE(released.ok());
  CHECK(released.error().code == ErrorCode::kOutOfRange);
  CHECK(released.error().message.find("--max-finished-slices") != std::string::npos);
  // Its result and status are still there; the newest job streams all of its slices.
  auto again = first.value().wait(kJobTimeout);
  REQUIRE(again.ok());
  CHECK(again.value().value == 303.0);
  std::set<std::uint64_t> seen;
  for (const SliceResult& r : second.value().as_completed(kJobTimeout)) seen.insert(r.slice);
  CHECK(seen.size() == 20);
}

TEST_CASE("clients: progress is reported and cancel stops a running job", "[integration]") {
  LocalCluster cluster(cluster_options(1));
  auto& c = cluster.client();
  JobRequest req = JobRequest::range("sleep", 0, 10'000).with("ms", 5.0);
  req.slice_size = 1;  // 10,000 slices of 5 ms: far longer than the test waits
  auto job = c.submit(req);
  REQUIRE(job.ok());
  auto early = job.value().poll(std::chrono::milliseconds(300));
  REQUIRE(early.ok());
  CHECK_FALSE(early.value().has_value());
  auto st = job.value().progress();
  REQUIRE(st.ok());
  CHECK(st.value().total == 10'000);
  CHECK(st.value().done < st.value().total);
  auto cancelled = job.value().cancel();
  REQUIRE(cancelled.ok());
  CHECK(cancelled.value().state == JobState::kCancelled);
  auto r = job.value().wait(kJobTimeout);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kCancelled);
  // The worker is free again: a new job completes.
  auto quick = c.run(JobRequest::range("primes", 0, 100), kJobTimeout);
  REQUIRE(quick.ok());
  CHECK(quick.value().value == 25.0);
}

TEST_CASE("clients: a retried submit with the same job id runs the job once", "[integration]") {
  LocalCluster cluster(cluster_options(1));
  auto& c = cluster.client();
  JobRequest req = JobRequest::range("primes", 0, 10'000);
  req.job_id = "retry-" + unique_name("id").substr(7);
  auto first = c.submit(req);
  REQUIRE(first.ok());
  CHECK_FALSE(first.value().existed());
  auto second = c.submit(req);
  REQUIRE(second.ok());
  CHECK(second.value().existed());
  CHECK(second.value().id() == first.value().id());
  auto r = second.value().wait(kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().value == 1229.0);
  auto all = c.status();
  REQUIRE(all.ok());
  int with_id = 0;
  for (const auto& s : all.value()) with_id += s.job_id == req.job_id ? 1 : 0;
  CHECK(with_id == 1);
}

TEST_CASE("clients: connecting where no broker listens fails with unreachable", "[integration]") {
  const auto start = std::chrono::steady_clock::now();
  auto c = Client::connect(ClientOptions{.broker = "ipc:///tmp/zwq-no-broker-here/control",
                                         .request_timeout = std::chrono::milliseconds(300)});
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == ErrorCode::kUnreachable);
  CHECK(c.error().message.find("zwq-no-broker-here") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}
