#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "zwq/partial.hpp"

using namespace zwq;

namespace {

Partial moments_of(const std::vector<double>& xs) {
  Partial p = identity_partial(Combiner::kMoments);
  long double s = 0;
  for (double x : xs) s += x;
  const double mean = static_cast<double>(s / xs.size());
  long double m2 = 0;
  for (double x : xs) m2 += (x - mean) * (x - mean);
  p.n = xs.size();
  p.hi = mean;
  p.lo = static_cast<double>(m2);
  return p;
}

}  // namespace

TEST_CASE("partial dd_add keeps the bits a plain double sum loses", "[common][partial]") {
  double hi = 0, lo = 0;
  dd_add(hi, lo, 1e16);
  for (int i = 0; i < 1000; ++i) dd_add(hi, lo, 1.0);
  dd_add(hi, lo, -1e16);
  CHECK(hi + lo == 1000.0);
  double naive = 1e16;
  for (int i = 0; i < 1000; ++i) naive += 1.0;
  CHECK(naive - 1e16 != 1000.0);  // the reason dd_add exists
}

TEST_CASE("partial sum merge is exact across many slices", "[common][partial]") {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(-1e6, 1e6);
  Partial acc = identity_partial(Combiner::kSum);
  long double ref = 0;
  for (int i = 0; i < 10000; ++i) {
    Partial p{.combiner = Combiner::kSum, .n = 1, .hi = u(rng)};
    ref += p.hi;
    REQUIRE(merge_into(acc, p).ok());
  }
  CHECK(acc.n == 10000);
  CHECK(std::abs((acc.hi + acc.lo) - static_cast<double>(ref)) <= 1e-9);
}

TEST_CASE("partial moments merge (Chan) matches a two-pass reference", "[common][partial]") {
  std::mt19937_64 rng(2);
  std::normal_distribution<double> g(1000.0, 3.0);
  std::vector<double> all;
  Partial acc = identity_partial(Combiner::kMoments);
  for (int s = 0; s < 50; ++s) {
    std::vector<double> xs(1 + s * 7);
    for (auto& x : xs) x = g(rng);
    all.insert(all.end(), xs.begin(), xs.end());
    REQUIRE(merge_into(acc, moments_of(xs)).ok());
  }
  const Partial ref = moments_of(all);
  CHECK(acc.n == ref.n);
  CHECK(acc.hi == Approx(ref.hi).epsilon(1e-14));
  CHECK(acc.lo == Approx(ref.lo).epsilon(1e-10));
}

TEST_CASE("partial moments merge with an empty side is the other side", "[common][partial]") {
  Partial a = identity_partial(Combiner::kMoments);
  Partial b = moments_of({1.0, 2.0, 4.0});
  REQUIRE(merge_into(a, b).ok());
  CHECK(a == b);
  REQUIRE(merge_into(a, identity_partial(Combiner::kMoments)).ok());
  CHECK(a == b);
}

TEST_CASE("partial min and max propagate NaN and ignore empty partials", "[common][partial]") {
  Partial mn = identity_partial(Combiner::kMin);
  REQUIRE(merge_into(mn, Partial{.combiner = Combiner::kMin, .n = 2, .hi = 5}).ok());
  REQUIRE(merge_into(mn, identity_partial(Combiner::kMin)).ok());
  REQUIRE(merge_into(mn, Partial{.combiner = Combiner::kMin, .n = 1, .hi = -2}).ok());
  CHECK(mn.hi == -2);
  CHECK(mn.n == 3);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  REQUIRE(merge_into(mn, Partial{.combiner = Combiner::kMin, .n = 1, .hi = nan}).ok());
  REQUIRE(merge_into(mn, Partial{.combiner = Combiner::kMin, .n = 1, .hi = -100}).ok());
  CHECK(std::isnan(mn.hi));
  Partial mx = identity_partial(Combiner::kMax);
  REQUIRE(merge_into(mx, Partial{.combiner = Combiner::kMax, .n = 1, .hi = -7}).ok());
  CHECK(mx.hi == -7);
}

TEST_CASE("partial histogram merge is exact and in any order", "[common][partial]") {
  std::vector<Partial> parts;
  for (std::uint64_t i = 0; i < 5; ++i) {
    Partial p = identity_partial(Combiner::kHistogram, 3);
    p.bins = {i, 2 * i, 3, 1, 0};
    p.n = 6 * i + 4;
    parts.push_back(p);
  }
  Partial fwd = identity_partial(Combiner::kHistogram, 3);
  for (const auto& p : parts) REQUIRE(merge_into(fwd, p).ok());
  Partial rev = identity_partial(Combiner::kHistogram, 3);
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) REQUIRE(merge_into(rev, *it).ok());
  CHECK(fwd == rev);
  CHECK(fwd.bins == std::vector<std::uint64_t>{10, 20, 15, 5, 0});
}

TEST_CASE("partial merge refuses mismatched combiners, shapes and gather", "[common][partial]") {
  Partial s = identity_partial(Combiner::kSum);
  auto st = merge_into(s, identity_partial(Combiner::kMin));
  CHECK_FALSE(st.ok());
  CHECK(st.error().code == ErrorCode::kInvalidArgument);
  Partial h = identity_partial(Combiner::kHistogram, 3);
  CHECK_FALSE(merge_into(h, identity_partial(Combiner::kHistogram, 4)).ok());
  Partial g = identity_partial(Combiner::kGather);
  CHECK_FALSE(merge_into(g, identity_partial(Combiner::kGather)).ok());
}

TEST_CASE("partial sum folded in slice order is bitwise reproducible", "[common][partial]") {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Partial> slices(257);
  for (auto& p : slices) p = Partial{.combiner = Combiner::kSum, .n = 1, .hi = u(rng) * 1e8, .lo = u(rng)};
  auto fold = [&] {
    Partial acc = identity_partial(Combiner::kSum);
    for (const auto& p : slices) REQUIRE(merge_into(acc, p).ok());
    return acc;
  };
  const Partial a = fold();
  const Partial b = fold();
  CHECK(a == b);
}

TEST_CASE("partial sums with an infinity stay infinite, not NaN", "[common][partial]") {
  const double inf = std::numeric_limits<double>::infinity();
  double hi = 0, lo = 0;
  dd_add(hi, lo, 1.0);
  dd_add(hi, lo, inf);
  dd_add(hi, lo, 2.0);
  CHECK(hi + lo == inf);
  Partial acc = identity_partial(Combiner::kSum);
  REQUIRE(merge_into(acc, Partial{.combiner = Combiner::kSum, .n = 1, .hi = 3}).ok());
  REQUIRE(merge_into(acc, Partial{.combiner = Combiner::kSum, .n = 1, .hi = -inf}).ok());
  CHECK(acc.hi + acc.lo == -inf);
}
