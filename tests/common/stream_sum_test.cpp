// The streamed sum behind the `sum` kernel (and the streamed dot behind `dot`): the AVX2 and
// baseline builds must agree to the bit, as the kernels promise that the same terms always give
// the same bits.
#include "kernels/stream_sum.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/kernels.hpp"

namespace zwq::kernels {
namespace {

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// Magnitudes spread over 2^-30..2^30 with both signs: every block total rounds, so adding the
// terms in any other order or with fused operations changes the low bits.
template <typename T>
std::vector<T> spread_values(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
  std::uniform_int_distribution<int> exponent(-30, 30);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(std::ldexp(mantissa(rng), exponent(rng)));
  return v;
}

struct Dd {
  double hi = 0;
  double lo = 0;
};

template <typename T>
Dd sum_with(const std::vector<T>& v, std::size_t n, Isa isa) {
  Dd out;
  stream_sum(v.data(), n, out.hi, out.lo, isa);
  return out;
}

// The same loop as written in the header, compiled here with the tests' own flags.
template <typename T>
Dd header_sum(const std::vector<T>& v, std::size_t n) {
  Dd out;
  dd_sum(
      n, [&v](std::uint64_t i) { return static_cast<double>(v[i]); }, out.hi, out.lo);
  return out;
}

TEMPLATE_TEST_CASE("stream sum gives the same bits in every build as the header loop", "[kernels]",
                   float, double) {
  const auto v = spread_values<TestType>(3 * kBlock + 5, 11);
  // Empty, shorter than the lanes, one block exactly, and ragged tails of blocks and lanes.
  for (std::size_t n :
       {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{kLanes},
        std::size_t{kBlock - 1}, std::size_t{kBlock}, std::size_t{kBlock + 1}, v.size()}) {
    INFO("n = " << n);
    const Dd want = header_sum(v, n);
    const Dd base = sum_with(v, n, Isa::kBaseline);
    CHECK(same_bits(base.hi, want.hi));
    CHECK(same_bits(base.lo, want.lo));
    if (isa_supported(Isa::kAvx2)) {
      const Dd avx2 = sum_with(v, n, Isa::kAvx2);
      CHECK(same_bits(avx2.hi, want.hi));
      CHECK(same_bits(avx2.lo, want.lo));
    }
  }
  // The values really do round: a plain running double total gives other bits.
  double running = 0;
  for (TestType x : v) running += static_cast<double>(x);
  CHECK_FALSE(same_bits(running, header_sum(v, v.size()).hi));
}

// The dot kernel streams same-dtype float pairs: the header loop's products, in every build.
TEMPLATE_TEST_CASE("stream dot gives the same bits in every build as the header loop", "[kernels]",
                   float, double) {
  const auto a = spread_values<TestType>(2 * kBlock + 9, 12);
  const auto b = spread_values<TestType>(2 * kBlock + 9, 13);
  for (std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{kBlock}, a.size()}) {
    INFO("n = " << n);
    Dd want;
    dd_sum(
        n, [&](std::uint64_t i) { return static_cast<double>(a[i]) * static_cast<double>(b[i]); },
        want.hi, want.lo);
    for (Isa isa : {Isa::kBaseline, Isa::kAvx2}) {
      if (!isa_supported(isa)) continue;
      Dd got;
      stream_dot(a.data(), b.data(), n, got.hi, got.lo, isa);
      CHECK(same_bits(got.hi, want.hi));
      CHECK(same_bits(got.lo, want.lo));
    }
  }
}

TEST_CASE(
    "stream sum of float32 is exact while magnitudes stay within 2^18 of each other, and loses a "
    "small float64 term beside a large one in the same run, as README.md says",
    "[kernels]") {
  // Both signs, magnitudes in [1, 2^18): every term is a multiple of 2^-23 and a run of 4096 of
  // them stays below 2^30, so a run fits in 53 bits. The exact sum, in units of 2^-23, is an
  // integer well inside 64 bits, and so are hi and lo in those units when the sum is exact.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> mantissa(1.0, 2.0);
  std::uniform_int_distribution<int> exponent(0, 17);
  std::vector<float> v(20 * kBlock + 3);
  std::int64_t exact = 0;
  for (auto& x : v) {
    x = static_cast<float>(std::ldexp(mantissa(rng), exponent(rng)) * (rng() % 2 ? 1 : -1));
    exact += static_cast<std::int64_t>(std::ldexp(x, 23));
  }
  const Dd got = sum_with(v, v.size(), best_isa());
  const double hi = std::ldexp(got.hi, 23), lo = std::ldexp(got.lo, 23);
  REQUIRE(hi == std::trunc(hi));
  REQUIRE(lo == std::trunc(lo));
  CHECK(static_cast<std::int64_t>(hi) + static_cast<std::int64_t>(lo) == exact);

  // 1e16 and 1 in one run: the run's double total cannot hold 1e16 + 1, so the 1 is lost; as
  // two runs (two slices), each total enters the double-double alone and the 1 is kept.
  const std::vector<double> cancel{1e16, 1.0};
  const Dd whole = sum_with(cancel, cancel.size(), best_isa());
  CHECK(whole.hi == 1e16);
  CHECK(whole.lo == 0);
  Dd split;
  for (const double& x : cancel) stream_sum(&x, 1, split.hi, split.lo, best_isa());
  CHECK(split.hi == 1e16);
  CHECK(split.lo == 1);
}

TEST_CASE("stream sum picks avx2 exactly when the cpu has it", "[kernels]") {
  CHECK(isa_supported(Isa::kBaseline));
  CHECK((best_isa() == Isa::kAvx2) == isa_supported(Isa::kAvx2));
}

}  // namespace
}  // namespace zwq::kernels
