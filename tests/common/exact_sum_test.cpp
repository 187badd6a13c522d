// The fsum kernel and the kExactSum combiner: the answer is the exact sum rounded once, the
// same bits as an independent big-integer reference, whatever the slices and their order.
#include "kernels/exact_sum.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cfloat>
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

template <typename T>
double reference_sum(const std::vector<T>& v) {
  ExactReference r;
  for (T x : v) r.add(static_cast<double>(x));
  return r.value();
}

// fsum over v, cut into slices of `slice` elements merged in a shuffled order.
template <typename T>
Partial fsum_sliced(const std::vector<T>& v, std::size_t slice, unsigned order_seed) {
  const KernelInfo* k = KernelRegistry::builtin().find("fsum");
  REQUIRE(k != nullptr);
  std::vector<Partial> parts;
  for (std::size_t first = 0; first < v.size(); first += slice) {
    SliceContext ctx;
    ctx.count = std::min(slice, v.size() - first);
    ctx.in = {v.data() + first, dtype_of<T>()};
    Partial p;
    p.combiner = Combiner::kExactSum;
    REQUIRE(run_kernel(*k, ctx, p).ok());
    parts.push_back(std::move(p));
  }
  std::shuffle(parts.begin(), parts.end(), std::mt19937(order_seed));
  Partial acc = identity_partial(Combiner::kExactSum);
  for (const Partial& p : parts) REQUIRE(merge_into(acc, p).ok());
  return acc;
}

// Magnitudes over 2^lo..2^hi, both signs, and each value also cancelled by its negation
// somewhere later, so that the small ones decide the answer.
template <typename T>
std::vector<T> cancelling_values(std::size_t n, int lo, int hi, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
  std::uniform_int_distribution<int> exponent(lo, hi);
  std::vector<T> v;
  while (v.size() < n) {
    const T x = static_cast<T>(std::ldexp(mantissa(rng), exponent(rng)));
    v.push_back(x);
    if (exponent(rng) > (lo + hi) / 2 && v.size() < n) v.push_back(-x);
  }
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

double run_isa(const std::vector<float>& v, Isa isa) {
  ExactSum acc;
  exact_sum(v.data(), v.size(), acc, isa);
  return expansion_value(acc.expansion);
}
double run_isa(const std::vector<double>& v, Isa isa) {
  ExactSum acc;
  exact_sum(v.data(), v.size(), acc, isa);
  return expansion_value(acc.expansion);
}

TEST_CASE("an expansion rounds once, half to even, and a lower term breaks the tie",
          "[kernels][fsum]") {
  const double u = std::ldexp(1.0, -53);  // half an ulp of 1
  auto value_of = [](std::initializer_list<double> xs) {
    std::vector<double> t;
    for (double x : xs) REQUIRE(expansion_add(t, x));
    return expansion_value(t);
  };
  CHECK(value_of({1e16, 1.0, -1e16}) == 1.0);  // a double-double loop's classic loss
  CHECK(value_of({1.0, u}) == 1.0);            // a tie: to even
  CHECK(value_of({1.0, u, std::ldexp(1.0, -106)}) == 1.0 + 2 * u);  // past the tie: up
  CHECK(value_of({1.0, u, -std::ldexp(1.0, -106)}) == 1.0);         // short of it: down
  CHECK(value_of({1.0 + 2 * u, u}) == 1.0 + 4 * u);                 // a tie from odd: up
  CHECK(value_of({}) == 0.0);
  // Overflow is refused and leaves the expansion as it was.
  std::vector<double> t{DBL_MAX};
  double overflow = 0;
  CHECK_FALSE(expansion_add(t, DBL_MAX, &overflow));
  CHECK(overflow == std::numeric_limits<double>::infinity());
  CHECK(t == std::vector<double>{DBL_MAX});
}

TEMPLATE_TEST_CASE("fsum gives the correctly rounded sum for any slicing and merge order",
                   "[kernels][fsum]", float, double) {
  // float32 values reach down to subnormals; float64 over most of the exponent range.
  const bool f32 = sizeof(TestType) == 4;
  const auto v = f32 ? cancelling_values<TestType>(30'011, -149, 100, 3)
                     : cancelling_values<TestType>(30'011, -1000, 1000, 3);
  const double want = reference_sum(v);
  double naive = 0;
  for (TestType x : v) naive += static_cast<double>(x);
  CHECK_FALSE(same_bits(naive, want));  // the data does defeat a plain sum
  for (std::size_t slice :
       {std::size_t{1}, std::size_t{7}, std::size_t{4096}, std::size_t{5000}, v.size()}) {
    INFO("slice " << slice);
    const Partial p = fsum_sliced(v, slice, static_cast<unsigned>(slice));
    CHECK(same_bits(exact_sum_value(p), want));
    CHECK(p.n == v.size());
  }
}

TEMPLATE_TEST_CASE("fsum agrees with the reference on everyday data: pattern, normal, tiny values",
                   "[kernels][fsum]", float, double) {
  std::mt19937 rng(9);
  std::normal_distribution<double> normal;
  std::vector<TestType> pattern(100'000), gaussian(100'000), mixed(100'000);
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    pattern[i] = static_cast<TestType>(static_cast<double>(i % 1024) * 0.25);
    gaussian[i] = static_cast<TestType>(normal(rng));
    // Mostly ~1, now and then 1e-30: a float32 block then needs its levels.
    mixed[i] = static_cast<TestType>(i % 997 == 0 ? 1e-30 * normal(rng) : 1 + normal(rng));
  }
  for (const auto* v : {&pattern, &gaussian, &mixed}) {
    const double want = reference_sum(*v);
    CHECK(same_bits(run_isa(*v, Isa::kBaseline), want));
    if (isa_supported(Isa::kAvx2)) CHECK(same_bits(run_isa(*v, Isa::kAvx2), want));
    CHECK(same_bits(exact_sum_value(fsum_sliced(*v, 3000, 1)), want));
  }
}

TEST_CASE("fsum of float64 beyond 2^1012 is still exact, and overflow gives infinity",
          "[kernels][fsum]") {
  std::vector<double> v{DBL_MAX / 2, 1.0, -DBL_MAX / 4, 3e-300, -DBL_MAX / 4, 0.5};
  for (int i = 0; i < 5000; ++i) v.push_back(i % 2 ? 1e-10 : -1e-10);
  v.push_back(std::ldexp(1.0, -60));
  CHECK(same_bits(exact_sum_value(fsum_sliced(v, 4096, 2)), reference_sum(v)));
  CHECK(exact_sum_value(fsum_sliced(v, 4096, 2)) == 1.5 + std::ldexp(1.0, -60));

  // Only subnormals and values below 2^-1032 left: the level that sums them plainly.
  std::vector<double> tiny;
  for (int i = 0; i < 3000; ++i) tiny.push_back(std::ldexp(static_cast<double>(i % 7) - 3, -1040));
  tiny.push_back(4.9406564584124654e-324);
  CHECK(same_bits(exact_sum_value(fsum_sliced(tiny, 2048, 3)), reference_sum(tiny)));
  CHECK(exact_sum_value(fsum_sliced(tiny, 2048, 3)) != 0);

  const std::vector<double> big{DBL_MAX, DBL_MAX};
  CHECK(exact_sum_value(fsum_sliced(big, 1, 0)) == std::numeric_limits<double>::infinity());
  CHECK(exact_sum_value(fsum_sliced(big, 2, 0)) == std::numeric_limits<double>::infinity());
}

// float64 blocks are split as they stream in, against a level guessed from the block before.
// Blocks of 2048 whose magnitudes jump up (the guess is too low: the block is done again), fall
// (too high: more levels), sit at 0.25..0.5, near the largest sigma, and below 2^-1032.
TEST_CASE("fsum of float64 is exact whether the block before guessed its level right or not",
          "[kernels][fsum]") {
  std::mt19937_64 rng(21);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  std::vector<double> v;
  auto block = [&](int exponent, std::size_t count = 2048) {
    for (std::size_t i = 0; i < count; ++i) v.push_back(std::ldexp(unit(rng), exponent));
  };
  for (int exponent : {0, 40, 41, -30, -2, -2, 300, -700, 1011, 1011, -1040, 0, 1012, 5}) {
    block(exponent);
  }
  block(3, 100);  // a short last block
  const double want = reference_sum(v);
  CHECK(same_bits(run_isa(v, Isa::kBaseline), want));
  if (isa_supported(Isa::kAvx2)) CHECK(same_bits(run_isa(v, Isa::kAvx2), want));
  CHECK(same_bits(exact_sum_value(fsum_sliced(v, v.size(), 0)), want));

  // A guessed block with a NaN in it gives NaN, and the blocks after it stay exact.
  std::vector<double> w(3 * 2048, 0.75);
  w[2048 + 5] = std::numeric_limits<double>::quiet_NaN();
  CHECK(std::isnan(exact_sum_value(fsum_sliced(w, w.size(), 0))));
  w[2048 + 5] = 1e-300;
  CHECK(same_bits(exact_sum_value(fsum_sliced(w, w.size(), 0)), reference_sum(w)));
}

TEMPLATE_TEST_CASE("fsum of an infinity or NaN is their IEEE sum, as a plain sum's",
                   "[kernels][fsum]", float, double) {
  const TestType inf = std::numeric_limits<TestType>::infinity();
  std::vector<TestType> v(10'000, TestType(1.5));
  v[17] = inf;
  CHECK(exact_sum_value(fsum_sliced(v, 4096, 0)) == inf);
  v[9000] = -inf;  // in another slice: the merge adds the specials
  CHECK(std::isnan(exact_sum_value(fsum_sliced(v, 4096, 0))));
  v[9000] = 1;
  v[5] = std::numeric_limits<TestType>::quiet_NaN();
  CHECK(std::isnan(exact_sum_value(fsum_sliced(v, 4096, 0))));
}

TEST_CASE("fsum of integers is their exact sum", "[kernels][fsum]") {
  // 2^63 - 1 is no double: an element rounded to one (2^63) would make this sum 0, not 1.
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  const std::vector<std::int64_t> v{max, -(max - 1)};
  CHECK(exact_sum_value(fsum_sliced(v, 1, 0)) == 1.0);  // each slice's partial exact
  CHECK(exact_sum_value(fsum_sliced(v, 2, 0)) == 1.0);
  const std::vector<std::int64_t> u{max, max, 1, 1};  // 2^64 exactly, beyond int64
  CHECK(exact_sum_value(fsum_sliced(u, 4, 0)) == std::ldexp(1.0, 64));
  std::vector<std::int64_t> w{std::int64_t{1} << 62, 1, -(std::int64_t{1} << 62)};
  CHECK(exact_sum_value(fsum_sliced(w, 3, 0)) == 1.0);
}

TEST_CASE("a merged exact sum keeps components beyond two, and the merge is order free",
          "[kernels][fsum]") {
  // Three far-apart parts need three doubles: hi and lo cannot hold them.
  Partial a = identity_partial(Combiner::kExactSum);
  set_exact_terms(a, {std::ldexp(1.0, -200), 1.0, std::ldexp(1.0, 200)});
  CHECK(a.terms.size() == 1);
  CHECK(a.hi == std::ldexp(1.0, 200));
  Partial b = identity_partial(Combiner::kExactSum);
  set_exact_terms(b, {-std::ldexp(1.0, 200)});
  Partial ab = identity_partial(Combiner::kExactSum), ba = ab;
  REQUIRE(merge_into(ab, a).ok());
  REQUIRE(merge_into(ab, b).ok());
  REQUIRE(merge_into(ba, b).ok());
  REQUIRE(merge_into(ba, a).ok());
  CHECK(exact_sum_value(ab) == 1.0 + std::ldexp(1.0, -200));
  CHECK(exact_sum_value(ab) == exact_sum_value(ba));
  CHECK_FALSE(combiner_is_order_sensitive(Combiner::kExactSum));
  // It travels with its terms.
  msgpack::sbuffer buf;
  msgpack::pack(buf, a);
  Partial back;
  msgpack::unpack(buf.data(), buf.size()).get().convert(back);
  CHECK(back == a);
}

}  // namespace
}  // namespace zwq::kernels
