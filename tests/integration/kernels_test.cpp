// End-to-end runs of the built-in kernels other than sum.
#include <catch2/catch.hpp>
#include <cmath>

#include "cluster.hpp"

using namespace zwq;
using namespace zwq::test;

TEST_CASE("map kernels write the output array", "[integration]") {
  LocalCluster cluster(cluster_options(2));
  auto& c = cluster.client();
  auto in = make_array<float>("map-in", 100'003);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 1000) * 0.5f;
  SECTION("affine into f64") {
    auto out = make_array<double>("map-out", in.size());
    JobRequest req = JobRequest::map("affine", in, out).with("a", 2.0).with("b", -1.0);
    req.slice_size = 4096;
    auto r = c.run(req, kJobTimeout);
    REQUIRE(r.ok());
    CHECK(r.value().merged.count == in.size());
    for (std::size_t i = 0; i < in.size(); i += 997) {
      CHECK(out[i] == 2.0 * static_cast<double>(in[i]) - 1.0);
    }
    CHECK(out[in.size() - 1] == 2.0 * static_cast<double>(in[in.size() - 1]) - 1.0);
  }
  SECTION("cube into f32, the seeds' x**3") {
    auto out = make_array<float>("cube-out", in.size());
    auto r = c.run(JobRequest::map("cube", in, out), kJobTimeout);
    REQUIRE(r.ok());
    for (std::size_t i = 0; i < in.size(); i += 1009) {
      const double x = in[i];
      CHECK(out[i] == static_cast<float>(x * x * x));
    }
  }
}

TEST_CASE("pi by the midpoint rule with N = 10^8 is within 1e-9", "[integration]") {
  LocalCluster cluster(cluster_options(2));
  JobRequest req = JobRequest::range("pi", 0, 100'000'000);
  req.slice_size = 1'000'000;
  auto r = cluster.client().run(req, kJobTimeout);
  REQUIRE(r.ok());
  CHECK(std::abs(r.value().value - M_PI) < 1e-9);
}

TEST_CASE("primes below 10^6 number 78498", "[integration]") {
  LocalCluster cluster(cluster_options(2));
  JobRequest req = JobRequest::range("primes", 0, 1'000'000);
  req.slice_size = 50'000;
  auto r = cluster.client().run(req, kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().value == 78498.0);
  auto small = cluster.client().run(JobRequest::range("primes", 10, 20), kJobTimeout);
  REQUIRE(small.ok());
  CHECK(small.value().value == 4.0);  // 11 13 17 19
}

TEST_CASE("monte carlo pi is reproducible with a fixed seed", "[integration]") {
  LocalCluster cluster(cluster_options(2));
  auto run = [&](std::int64_t seed) {
    JobRequest req = JobRequest::range("mcpi", 0, 2'000'000).with("seed", seed);
    req.slice_size = 100'000;
    auto r = cluster.client().run(req, kJobTimeout);
    REQUIRE(r.ok());
    return r.value();
  };
  const JobResult a = run(1234);
  const JobResult b = run(1234);
  const JobResult c = run(99);
  CHECK(a.merged.count == b.merged.count);
  CHECK(a.value == b.value);
  CHECK(a.merged.count != c.merged.count);
  CHECK(std::abs(a.value - M_PI) < 0.01);
}

TEST_CASE("mean, variance, histogram and dot over shared arrays", "[integration]") {
  LocalCluster cluster(cluster_options(2));
  auto& c = cluster.client();
  auto x = make_array<double>("stats", 200'001);
  fill_random(x, 5);
  long double s = 0;
  for (double v : x) s += v;
  const double mean = static_cast<double>(s / x.size());
  long double m2 = 0;
  for (double v : x) m2 += (v - mean) * (v - mean);

  JobRequest mreq = JobRequest::reduce("var", x);
  mreq.slice_size = 10'000;
  auto var = c.run(mreq, kJobTimeout);
  REQUIRE(var.ok());
  CHECK(var.value().merged.hi == Approx(mean).epsilon(1e-12));
  CHECK(var.value().value == Approx(static_cast<double>(m2 / x.size())).epsilon(1e-12));

  auto hist = c.run(JobRequest::reduce("histogram", x).with("lo", -0.5).with("hi", 0.5).with("bins", 4),
                    kJobTimeout);
  REQUIRE(hist.ok());
  const auto& bins = hist.value().merged.bins;
  REQUIRE(bins.size() == 6);
  std::uint64_t total = 0;
  for (auto b : bins) total += b;
  CHECK(total == x.size());
  std::uint64_t first_bin = 0;
  for (double v : x) first_bin += (v >= -0.5 && v < -0.25) ? 1 : 0;
  CHECK(bins[0] == first_bin);

  auto y = make_array<float>("dot-y", x.size());
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<float>(i % 3);
  long double dref = 0;
  for (std::size_t i = 0; i < y.size(); ++i) dref += static_cast<long double>(x[i]) * y[i];
  auto dot = c.run(JobRequest::reduce2("dot", x, y), kJobTimeout);
  REQUIRE(dot.ok());
  CHECK(dot.value().value == Approx(static_cast<double>(dref)).epsilon(1e-12));
}
