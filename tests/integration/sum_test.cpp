// End-to-end sums: a real broker, real workers, arrays in the real /dev/shm.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "cluster.hpp"

using namespace zwq;
using namespace zwq::test;

namespace {

template <typename T>
void check_sum_matches_reference(Client& client, std::size_t n, std::uint64_t slice) {
  auto a = make_array<T>("sum", n);
  fill_random(a, 42);
  JobRequest req = JobRequest::reduce("sum", a);
  req.slice_size = slice;
  auto r = client.run(req, kJobTimeout);
  REQUIRE(r.ok());
  const long double ref = reference_sum(a);
  INFO("dtype " << dtype_name(dtype_of<T>()) << " n=" << n);
  if constexpr (std::is_floating_point_v<T>) {
    CHECK(std::abs(r.value().value - static_cast<double>(ref)) <=
          1e-12 * std::max(1.0, std::abs(static_cast<double>(ref))));
  } else {
    CHECK(r.value().value == static_cast<double>(ref));  // integer sums are exact
  }
  CHECK(r.value().merged.n == n);
}

double sum_with_workers(int workers, const DatasetRef& ref, std::uint64_t slice) {
  LocalCluster cluster(cluster_options(workers));
  JobRequest req;
  req.kernel = "sum";
  req.input = ref;
  req.slice_size = slice;
  auto r = cluster.client().run(req, kJobTimeout);
  REQUIRE(r.ok());
  return r.value().value;
}

}  // namespace

TEST_CASE("sum matches a long double reference for every dtype over ipc", "[integration]") {
  LocalCluster cluster(cluster_options(2));
  auto& c = cluster.client();
  check_sum_matches_reference<float>(c, 1'000'003, 65536);
  check_sum_matches_reference<double>(c, 777'777, 50000);
  check_sum_matches_reference<std::int32_t>(c, 500'001, 4096);
  check_sum_matches_reference<std::int64_t>(c, 300'000, 7);
  check_sum_matches_reference<std::uint8_t>(c, 1'234'567, 100'000);
}

TEST_CASE("sum is bitwise identical with 1, 2 and 4 workers", "[integration]") {
  auto a = make_array<float>("det", 3'000'001);
  fill_random(a, 7);
  const double one = sum_with_workers(1, a.ref(), 4096);
  const double two = sum_with_workers(2, a.ref(), 4096);
  const double four = sum_with_workers(4, a.ref(), 4096);
  CHECK(std::memcmp(&one, &two, sizeof one) == 0);
  CHECK(std::memcmp(&one, &four, sizeof one) == 0);
}

TEST_CASE(
    "sum is bitwise identical under broker settings from broker_args, and a broker that "
    "refuses one fails the start",
    "[integration]") {
  auto a = make_array<float>("bargs", 1'000'003);
  fill_random(a, 11);
  const double plain = sum_with_workers(2, a.ref(), 4096);
  LocalClusterOptions o = cluster_options(2);
  // One slice per Tasks message, one batch in flight: the most messages this job can take.
  o.broker_args = {"--max-batch=1", "--pipeline-depth=1"};
  LocalCluster cluster(o);
  JobRequest req;
  req.kernel = "sum";
  req.input = a.ref();
  req.slice_size = 4096;
  auto r = cluster.client().run(req, kJobTimeout);
  REQUIRE(r.ok());
  CHECK(std::memcmp(&plain, &r.value().value, sizeof plain) == 0);
  LocalClusterOptions bad = cluster_options(1);
  bad.broker_args = {"--pipeline-depth=0"};  // out of its range (1-64)
  CHECK_THROWS_AS(LocalCluster(bad), SetupError);
}

TEST_CASE("sum handles ragged, single-element and empty arrays", "[integration]") {
  LocalCluster cluster(cluster_options(2));
  auto& c = cluster.client();
  SECTION("length not a multiple of the slice size") {
    auto a = make_array<double>("ragged", 1001);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<double>(i);
    JobRequest req = JobRequest::reduce("sum", a);
    req.slice_size = 100;
    auto job = c.submit(req);
    REQUIRE(job.ok());
    CHECK(job.value().total_slices() == 11);
    auto r = job.value().wait(kJobTimeout);
    REQUIRE(r.ok());
    CHECK(r.value().value == 1000.0 * 1001.0 / 2.0);
  }
  SECTION("length 1") {
    auto a = make_array<float>("one", 1);
    a[0] = 2.5f;
    auto r = c.run(JobRequest::reduce("sum", a), kJobTimeout);
    REQUIRE(r.ok());
    CHECK(r.value().value == 2.5);
    auto mx = c.run(JobRequest::reduce("max", a), kJobTimeout);
    REQUIRE(mx.ok());
    CHECK(mx.value().value == 2.5);
  }
  SECTION("length 0") {
    auto a = make_array<float>("empty", 0);
    auto job = c.submit(JobRequest::reduce("sum", a));
    REQUIRE(job.ok());
    CHECK(job.value().total_slices() == 0);
    auto r = job.value().wait(kJobTimeout);
    REQUIRE(r.ok());
    CHECK(r.value().value == 0.0);
    CHECK(r.value().merged.n == 0);
  }
}

TEST_CASE("sum runs over tcp on 127.0.0.1", "[integration]") {
  LocalCluster cluster(cluster_options(2, "tcp://127.0.0.1:*"));
  REQUIRE(cluster.address().rfind("tcp://127.0.0.1:", 0) == 0);
  check_sum_matches_reference<float>(cluster.client(), 2'000'000, 100'000);
  check_sum_matches_reference<std::int64_t>(cluster.client(), 100'000, 3'000);
}

TEST_CASE("sum of 2^28 f32 values agrees with long double to 1e-12", "[integration][big]") {
  auto a = make_array<float>("big", std::size_t{1} << 28);
  // Values in [0, 1): a sum of ~1.3e8 where naive float accumulation is off by percent.
  std::uint64_t s = 11;
  for (auto& x : a) x = static_cast<float>(static_cast<double>(splitmix64(s) >> 40) * 0x1.0p-24);
  const long double ref = reference_sum(a);
  LocalCluster cluster(cluster_options(2));
  auto r = cluster.client().run(JobRequest::reduce("sum", a), kJobTimeout);
  REQUIRE(r.ok());
  const double rel =
      std::abs((r.value().value - static_cast<double>(ref)) / static_cast<double>(ref));
  INFO("zwq " << r.value().value << " reference " << static_cast<double>(ref) << " rel " << rel);
  CHECK(rel <= 1e-12);
}
