// The fdot kernel: the exact sum of the products, rounded once, the same bits as an independent
// big-integer reference for every pair of dtypes, whatever the slices and their order.
#include "kernels/exact_dot.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "exact_reference.hpp"
#include "zwq/kernel.hpp"
#include "zwq/partial.hpp"

namespace zwq::kernels {
namespace {

using test::ExactReference;

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

template <typename A, typename B>
double reference_dot(const std::vector<A>& a, const std::vector<B>& b) {
  ExactReference r;
  for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(r.add_product(a[i], b[i]));
  return r.value();
}

// fdot over (a, b), cut into slices of `slice` elements merged in a shuffled order.
template <typename A, typename B>
double fdot_sliced(const std::vector<A>& a, const std::vector<B>& b, std::size_t slice,
                   unsigned order_seed) {
  const KernelInfo* k = KernelRegistry::builtin().find("fdot");
  REQUIRE(k != nullptr);
  std::vector<Partial> parts;
  for (std::size_t first = 0; first < a.size(); first += slice) {
    SliceContext ctx;
    ctx.count = std::min(slice, a.size() - first);
    ctx.in = {a.data() + first, dtype_of<A>()};
    ctx.in2 = {b.data() + first, dtype_of<B>()};
    Partial p;
    p.combiner = Combiner::kExactSum;
    REQUIRE(run_kernel(*k, ctx, p).ok());
    CHECK(p.n == ctx.count);
    parts.push_back(std::move(p));
  }
  std::shuffle(parts.begin(), parts.end(), std::mt19937(order_seed));
  Partial acc = identity_partial(Combiner::kExactSum);
  for (const Partial& p : parts) REQUIRE(merge_into(acc, p).ok());
  return exact_sum_value(acc);
}

template <typename A, typename B>
double run_isa(const std::vector<A>& a, const std::vector<B>& b, Isa isa) {
  ExactSum acc;
  exact_dot(a.data(), dtype_of<A>(), b.data(), dtype_of<B>(), a.size(), acc, isa);
  return expansion_value(acc.expansion);
}

// Values that use a type's whole width: floats over many binades (down to float32's
// subnormals), integers over their whole range.
template <typename T>
T random_value(std::mt19937_64& rng) {
  if constexpr (std::is_floating_point_v<T>) {
    std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
    const int lo = sizeof(T) == 4 ? -149 : -440;
    const int hi = sizeof(T) == 4 ? 127 : 440;
    std::uniform_int_distribution<int> exponent(lo, hi);
    return static_cast<T>(std::ldexp(mantissa(rng), exponent(rng)));
  } else {
    return static_cast<T>(rng());  // the low bits: the type's whole range, both signs
  }
}

// Every product now and then meets its negation (a, -b) later on, so that the small products
// decide the answer.
template <typename A, typename B>
void cancelling_pairs(std::vector<A>& a, std::vector<B>& b, std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  while (a.size() < n) {
    const A x = random_value<A>(rng);
    const B y = random_value<B>(rng);
    a.push_back(x);
    b.push_back(y);
    if constexpr (std::is_signed_v<B>) {
      if (rng() % 2 == 0 && a.size() < n && y != std::numeric_limits<B>::lowest()) {
        a.push_back(x);
        b.push_back(static_cast<B>(-y));
      }
    }
  }
  std::vector<std::size_t> order(a.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<A> a2;
  std::vector<B> b2;
  for (std::size_t i : order) {
    a2.push_back(a[i]);
    b2.push_back(b[i]);
  }
  a.swap(a2);
  b.swap(b2);
}

template <typename A, typename B>
void check_pair(unsigned seed) {
  std::vector<A> a;
  std::vector<B> b;
  cancelling_pairs(a, b, 5'003, seed);
  const double want = reference_dot(a, b);
  CHECK(same_bits(run_isa(a, b, Isa::kBaseline), want));
  if (isa_supported(Isa::kAvx2)) CHECK(same_bits(run_isa(a, b, Isa::kAvx2), want));
  for (std::size_t slice : {std::size_t{1}, std::size_t{13}, std::size_t{1000}, a.size()}) {
    INFO("slice " << slice);
    CHECK(same_bits(fdot_sliced(a, b, slice, static_cast<unsigned>(slice)), want));
  }
}

template <typename A>
void check_with_every_second(unsigned seed) {
  check_pair<A, float>(seed);
  check_pair<A, double>(seed + 1);
  check_pair<A, std::int32_t>(seed + 2);
  check_pair<A, std::int64_t>(seed + 3);
  check_pair<A, std::uint8_t>(seed + 4);
}

TEMPLATE_TEST_CASE("fdot gives the correctly rounded dot for every pair of dtypes and any slicing",
                   "[kernels][fdot]", float, double, std::int32_t, std::int64_t, std::uint8_t) {
  check_with_every_second<TestType>(7);
}

TEST_CASE("fdot keeps a small product that a dot in doubles loses beside large ones",
          "[kernels][fdot]") {
  // 2^120 + 1 - 2^120, the three products in the same lane of the plain dot's accumulators.
  std::vector<double> a(17, 0.0), b(17, 0.0);
  a[0] = 0x1p60, b[0] = 0x1p60;
  a[8] = 1, b[8] = 1;
  a[16] = 0x1p60, b[16] = -0x1p60;
  CHECK(fdot_sliced(a, b, a.size(), 0) == 1.0);
  const KernelInfo* dot = KernelRegistry::builtin().find("dot");
  REQUIRE(dot != nullptr);
  SliceContext ctx;
  ctx.count = a.size();
  ctx.in = {a.data(), DType::kF64};
  ctx.in2 = {b.data(), DType::kF64};
  Partial p;
  p.combiner = Combiner::kSum;
  REQUIRE(run_kernel(*dot, ctx, p).ok());
  CHECK(p.hi + p.lo != 1.0);  // the data does defeat the compensated dot
}

TEST_CASE("fdot of float64 near the ends of the range is exact, in levels or element by element",
          "[kernels][fdot]") {
  // Blocks of 512 elements (float64 x float64 makes four products each): elements of 2^1000
  // (their split would overflow) and products of 2^1013 go element by element, the others in
  // levels, subnormal products too.
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  // A value of `bits` significant bits near 2^exponent.
  auto value = [&](int exponent, int bits) {
    return std::ldexp(std::round(unit(rng) * std::ldexp(1.0, bits)), exponent - bits);
  };
  std::vector<double> a, b;
  auto block = [&](int ea, int bits_a, int eb, int bits_b) {
    for (int i = 0; i < 512; ++i) {
      a.push_back(value(ea, bits_a));
      b.push_back(value(eb, bits_b));
    }
  };
  block(0, 53, 0, 53);
  block(1000, 53, -990, 53);  // split overflow: element by element
  block(600, 53, 405, 53);    // products near 2^1005: in levels
  block(-520, 21, -500, 10);  // products near 2^-1020, some subnormal, exact
  block(3, 53, -2, 53);
  a[3 * 512 + 100] = 0x1p507;  // 2^1013 and its negation, in the same block
  b[3 * 512 + 100] = 0x1p506;
  a[3 * 512 + 200] = 0x1p507;
  b[3 * 512 + 200] = -0x1p506;
  a.push_back(0x1p-600);  // a tail element
  b.push_back(3.0);
  const double want = reference_dot(a, b);
  CHECK(same_bits(run_isa(a, b, Isa::kBaseline), want));
  if (isa_supported(Isa::kAvx2)) CHECK(same_bits(run_isa(a, b, Isa::kAvx2), want));
  CHECK(same_bits(fdot_sliced(a, b, 1000, 1), want));
  CHECK(same_bits(fdot_sliced(a, b, 7, 2), want));
}

// float32 x float32 makes one product an element, split as it is made against a level guessed
// from the block before (2048 elements): blocks whose products jump up (the guess is too low:
// the block is done again), fall (too high: more levels), or hold a NaN.
TEST_CASE("fdot of float32 is exact whether the block before guessed its level right or not",
          "[kernels][fdot]") {
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  std::vector<float> a, b;
  for (int exponent : {0, 40, 41, -30, -2, 100, -120, 60, 0}) {
    for (int i = 0; i < 2048; ++i) {
      a.push_back(static_cast<float>(std::ldexp(unit(rng), exponent)));
      b.push_back(static_cast<float>(std::ldexp(unit(rng), exponent / 2)));
    }
  }
  a.resize(a.size() - 3);  // a short last block and a tail
  b.resize(a.size());
  const double want = reference_dot(a, b);
  CHECK(same_bits(run_isa(a, b, Isa::kBaseline), want));
  if (isa_supported(Isa::kAvx2)) CHECK(same_bits(run_isa(a, b, Isa::kAvx2), want));
  CHECK(same_bits(fdot_sliced(a, b, a.size(), 0), want));

  std::vector<float> c(3 * 2048, 0.75f), d(3 * 2048, 2.0f);
  c[2048 + 9] = std::numeric_limits<float>::quiet_NaN();  // in a guessed block
  CHECK(std::isnan(fdot_sliced(c, d, c.size(), 0)));
  c[2048 + 9] = 1e-30f;
  CHECK(same_bits(fdot_sliced(c, d, c.size(), 0), reference_dot(c, d)));
}

TEST_CASE("fdot of an infinity, a NaN or an overflowing product is the IEEE dot's",
          "[kernels][fdot]") {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> a(5000, 1.5f), b(5000, 2.0f);
  a[17] = inf;
  CHECK(fdot_sliced(a, b, 4096, 0) == inf);
  b[17] = 0;  // inf * 0
  CHECK(std::isnan(fdot_sliced(a, b, 4096, 0)));
  b[17] = 1;
  a[4999] = -inf;  // in the tail, and in another slice
  CHECK(std::isnan(fdot_sliced(a, b, 4096, 0)));

  std::vector<double> x{1e300, 1.0, 2.0}, y{1e300, 1.0, 3.0};
  CHECK(fdot_sliced(x, y, 3, 0) == std::numeric_limits<double>::infinity());
  y[0] = -1e300;
  CHECK(fdot_sliced(x, y, 1, 0) == -std::numeric_limits<double>::infinity());
  x.push_back(1e300);  // +inf and -inf: NaN, as in IEEE arithmetic
  y.push_back(1e300);
  CHECK(std::isnan(fdot_sliced(x, y, 4, 0)));
  std::vector<double> big(8, 1e200), one(8, 1.0);  // beyond 2^450, but finite products
  CHECK(same_bits(fdot_sliced(big, one, 8, 0), reference_dot(big, one)));
}

// DBL_MAX scaled to [0.5, 1) is 1 - 2^-53, which splits into 1 and -2^-53: the high part's
// product alone reaches 2^1024, the element's product does not.
TEST_CASE("fdot of products near the largest double is finite where the exact answer is",
          "[kernels][fdot]") {
  const double max = std::numeric_limits<double>::max();
  std::vector<double> a{max}, b{1.0};
  CHECK(fdot_sliced(a, b, 1, 0) == max);
  a = {max, -max, 1.0, 2.0, max, 0.5};  // in the vector path's block, then in the tail
  b = {1.0, 1.0, 3.0, 4.0, 0.75, 8.0};
  CHECK(same_bits(fdot_sliced(a, b, a.size(), 0), reference_dot(a, b)));
  CHECK(same_bits(fdot_sliced(a, b, 1, 0), reference_dot(a, b)));
  a = {max, max};  // 2 * DBL_MAX: beyond the largest double
  b = {1.0, 1.0};
  CHECK(fdot_sliced(a, b, 2, 0) == std::numeric_limits<double>::infinity());
}

TEST_CASE("fdot of int64 extremes is exact", "[kernels][fdot]") {
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  const std::int64_t min = std::numeric_limits<std::int64_t>::min();
  std::vector<std::int64_t> a{max, min, max, 1, min, 3, 5, 7};
  std::vector<std::int64_t> b{max, max, -1, 1, min, 5, 7, 11};
  CHECK(same_bits(fdot_sliced(a, b, 3, 0), reference_dot(a, b)));  // tails: element by element
  CHECK(same_bits(fdot_sliced(a, b, 8, 0), reference_dot(a, b)));  // the vector split
  // max^2 - max^2 + 1: the products cancel to the last bit.
  std::vector<std::int64_t> c{max, max, 1, 0}, d{max, -max, 1, 0};
  CHECK(fdot_sliced(c, d, 4, 0) == 1.0);
}

}  // namespace
}  // namespace zwq::kernels
