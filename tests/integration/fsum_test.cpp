// End-to-end exact sums and dot products: a real broker and workers over /dev/shm give the
// bits of an independent big-integer reference, whatever the slice size and the number of
// workers.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "cluster.hpp"
#include "exact_reference.hpp"

using namespace zwq;
using namespace zwq::test;

namespace {

// Magnitudes over 2^-60..2^60. Every value above 1 is followed by its negation, so that the
// exact sum is that of the small ones, which a sum in doubles beside the large ones loses.
template <typename T>
void fill_cancelling(SharedArray<T>& a, std::uint64_t seed) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::uint64_t r = splitmix64(seed);
    const double mantissa = static_cast<double>(r >> 11) * 0x1.0p-53 * 2.0 - 1.0;
    const int exponent = static_cast<int>(r % 121) - 60;
    a[i] = static_cast<T>(std::ldexp(mantissa, exponent));
    if (exponent > 0 && i + 1 < a.size()) {
      a[i + 1] = -a[i];
      ++i;
    } else if (exponent > 0) {
      a[i] = 0;
    }
  }
}

template <typename T>
double reference_of(const SharedArray<T>& a) {
  ExactReference ref;
  for (T x : a) ref.add(static_cast<double>(x));
  return ref.value();
}

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

template <typename T>
double run_with(Client& client, const SharedArray<T>& a, const char* kernel, std::uint64_t slice) {
  JobRequest req = JobRequest::reduce(kernel, a);
  req.slice_size = slice;
  auto r = client.run(req, kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().merged.n == a.size());
  return r.value().value;
}

}  // namespace

TEMPLATE_TEST_CASE("fsum gives the reference's bits for every slice size, where sum cannot",
                   "[integration]", float, double) {
  auto a = make_array<TestType>("fsum", 1'000'003);
  fill_cancelling(a, 5);
  const double want = reference_of(a);
  LocalCluster cluster(cluster_options(2));
  auto& c = cluster.client();
  for (std::uint64_t slice :
       {std::uint64_t{4096}, std::uint64_t{65'536}, std::uint64_t{1'000'003}}) {
    INFO("slice " << slice);
    CHECK(same_bits(run_with(c, a, "fsum", slice), want));
  }
  // The data does defeat the compensated sum: its answer depends on the slice size, or misses.
  const double s1 = run_with(c, a, "sum", 4096);
  const double s2 = run_with(c, a, "sum", 1'000'003);
  CHECK((!same_bits(s1, want) || !same_bits(s2, want)));
}

TEST_CASE("fsum is bitwise the same with 1 and 3 workers", "[integration]") {
  auto a = make_array<float>("fsum-w", 700'001);
  fill_cancelling(a, 9);
  double got[2] = {};
  int k = 0;
  for (int workers : {1, 3}) {
    LocalCluster cluster(cluster_options(workers));
    got[k++] = run_with(cluster.client(), a, "fsum", 10'000);
  }
  CHECK(same_bits(got[0], got[1]));
  CHECK(same_bits(got[0], reference_of(a)));
}

TEST_CASE("fdot of two arrays gives the reference's bits for every slice size and worker count",
          "[integration]") {
  auto a = make_array<float>("fdot-a", 500'009);
  auto b = make_array<double>("fdot-b", 500'009);
  fill_cancelling(a, 11);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = 1.0 + static_cast<double>(i % 7) * 0x1p-40;
  ExactReference ref;
  for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(ref.add_product(a[i], b[i]));
  const double want = ref.value();
  for (int workers : {1, 2}) {
    LocalCluster cluster(cluster_options(workers));
    for (std::uint64_t slice : {std::uint64_t{4096}, std::uint64_t{500'009}}) {
      INFO(workers << " worker(s), slice " << slice);
      JobRequest req = JobRequest::reduce2("fdot", a, b);
      req.slice_size = slice;
      auto r = cluster.client().run(req, kJobTimeout);
      REQUIRE(r.ok());
      CHECK(r.value().merged.n == a.size());
      CHECK(same_bits(r.value().value, want));
    }
  }
}
