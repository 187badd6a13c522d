// The built-in kernels, run slice by slice over in-memory arrays and merged as the collector does.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "zwq/kernel.hpp"

namespace zwq {
namespace {

__extension__ typedef __int128 Int128;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const KernelInfo& kernel(const std::string& name) {
  const KernelInfo* k = KernelRegistry::builtin().find(name);
  INFO("kernel " << name);
  REQUIRE(k != nullptr);
  return *k;
}

// A slice of an array job: the view is offset to the slice's first element, as workers do.
template <typename T>
SliceContext array_slice(const std::vector<T>& v, std::uint64_t first, std::uint64_t count,
                         const Params* params = nullptr) {
  SliceContext ctx;
  ctx.first = first;
  ctx.count = count;
  ctx.job_count = v.size();
  ctx.in = {v.data() + first, dtype_of<T>()};
  ctx.params = params;
  return ctx;
}

SliceContext range_slice(std::uint64_t slice, std::uint64_t first, std::uint64_t count,
                         std::uint64_t job_first, std::uint64_t job_count,
                         const Params* params = nullptr) {
  SliceContext ctx;
  ctx.slice = slice;
  ctx.first = first;
  ctx.count = count;
  ctx.job_first = job_first;
  ctx.job_count = job_count;
  ctx.params = params;
  return ctx;
}

Partial run_ok(const KernelInfo& k, const SliceContext& ctx) {
  Partial out;
  Status s = run_kernel(k, ctx, out);
  INFO(k.name << ": " << s.error().message);
  REQUIRE(s.ok());
  return out;
}

// Runs a kernel over an array in slices of `slice` elements and merges in slice order.
template <typename T>
Partial run_array(const std::string& name, const std::vector<T>& v, std::uint64_t slice,
                  const Params& params = {}) {
  const KernelInfo& k = kernel(name);
  Partial acc;
  bool first = true;
  for (std::uint64_t f = 0; f < v.size(); f += slice) {
    Partial p = run_ok(k, array_slice(v, f, std::min<std::uint64_t>(slice, v.size() - f), &params));
    if (first) {
      acc = p;
      first = false;
    } else {
      REQUIRE(merge_into(acc, p).ok());
    }
  }
  return acc;
}

// Runs a range kernel over [job_first, job_first + n) in slices and merges in slice order.
Partial run_range(const std::string& name, std::uint64_t job_first, std::uint64_t n,
                  std::uint64_t slice, const Params& params = {}) {
  const KernelInfo& k = kernel(name);
  Partial acc = identity_partial(k.combiner);
  std::uint64_t index = 0;
  for (std::uint64_t f = 0; f < n; f += slice, ++index) {
    const std::uint64_t count = std::min(slice, n - f);
    REQUIRE(
        merge_into(acc, run_ok(k, range_slice(index, job_first + f, count, job_first, n, &params)))
            .ok());
  }
  return acc;
}

template <typename T>
std::vector<T> random_values(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<T> v(n);
  for (auto& x : v) {
    if constexpr (std::is_floating_point_v<T>) {
      x = static_cast<T>(std::uniform_real_distribution<double>(-1000, 1000)(rng));
    } else {
      // The full range, extremes included, to exercise exact integer accumulation.
      x = static_cast<T>(rng());
    }
  }
  if constexpr (!std::is_floating_point_v<T>) {
    v[0] = std::numeric_limits<T>::max();
    v[1] = std::numeric_limits<T>::max();
    v[n - 1] = std::numeric_limits<T>::min();
  }
  return v;
}

double rel_err(long double got, long double want) {
  return static_cast<double>(std::fabs((got - want) / want));
}

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// ---- sum ----

TEMPLATE_TEST_CASE("kernel sum matches a long double reference for every dtype", "[kernels]", float,
                   double, std::int32_t, std::int64_t, std::uint8_t) {
  // Not a multiple of the block or lane count, and split into uneven slices.
  const auto v = random_values<TestType>(100'003, 7);
  const Partial p = run_array("sum", v, 30'001);
  CHECK(p.n == v.size());
  if constexpr (std::is_floating_point_v<TestType>) {
    long double want = 0;
    for (TestType x : v) want += x;
    CHECK(rel_err(static_cast<long double>(p.hi) + p.lo, want) < 1e-14);
  } else {
    Int128 want = 0;
    for (TestType x : v) want += x;
    // Integers are summed exactly: (hi, lo) is the nearest double-double, lo integral.
    CHECK(same_bits(p.hi + p.lo, static_cast<double>(want)));
    CHECK(static_cast<Int128>(p.hi) + static_cast<Int128>(p.lo) == want);
  }
}

TEST_CASE(
    "a job of no elements has no min, max, mean or variance (NaN, as numpy's nan), but a sum and "
    "a count of 0",
    "[kernels]") {
  for (const char* name : {"min", "max", "mean", "var"}) {
    INFO(name);
    const KernelInfo& k = kernel(name);
    const JobResult r = finalize_result(k, identity_partial(k.combiner), Params{}, 0);
    CHECK(std::isnan(r.value));
    if (k.combiner == Combiner::kMoments) CHECK(std::isnan(r.variance));
  }
  CHECK(finalize_result(kernel("sum"), identity_partial(Combiner::kSum), Params{}, 0).value == 0);
  CHECK(finalize_result(kernel("nonzero"), identity_partial(Combiner::kCount), Params{}, 0).value ==
        0);
  // One element is enough for all of them.
  Partial one = identity_partial(Combiner::kMoments);
  one.n = 1;
  one.hi = 2.5;
  const JobResult mean = finalize_result(kernel("mean"), one, Params{}, 1);
  CHECK(mean.value == 2.5);
  CHECK(mean.variance == 0);
}

TEST_CASE(
    "check_params refuses a parameter a built-in kernel does not read, naming those it takes, "
    "and passes any name to a kernel that declares none",
    "[kernels]") {
  Params misspelt;
  misspelt.set("A", 2.0);  // affine reads "a"
  auto s = check_params(kernel("affine"), misspelt, DType::kF32, 10);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == ErrorCode::kInvalidArgument);
  CHECK(s.error().message == "kernel 'affine' has no parameter 'A' (it takes: a b)");

  Params bins;
  bins.set("lo", 0.0);
  bins.set("hi", 1.0);
  bins.set("nbins", std::int64_t{4});
  s = check_params(kernel("histogram"), bins, DType::kF32, 10);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("no parameter 'nbins' (it takes: lo hi bins)") != std::string::npos);
  bins.values.erase("nbins");
  bins.set("bins", std::int64_t{4});
  CHECK(check_params(kernel("histogram"), bins, DType::kF32, 10).ok());
  bins.values.erase("lo");  // declared names still meet the kernel's own check
  CHECK(check_params(kernel("histogram"), bins, DType::kF32, 10)
            .error()
            .message.find("'lo' and 'hi'") != std::string::npos);

  Params any;
  any.set("foo", std::int64_t{1});
  s = check_params(kernel("sum"), any, DType::kF32, 10);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message == "kernel 'sum' has no parameter 'foo' (it takes none)");
  CHECK(check_params(kernel("sum"), Params{}, DType::kF32, 10).ok());

  KernelInfo plugin = kernel("sum");  // as a plugin's: no names declared
  plugin.params = nullptr;
  CHECK(check_params(plugin, any, DType::kF32, 10).ok());
  // Every built-in kernel declares its names.
  for (const std::string& name : KernelRegistry::builtin().names()) {
    INFO(name);
    CHECK(kernel(name).params != nullptr);
  }
}

TEST_CASE("kernel sum of 2^24 random f32 merged by slice agrees with long double to 1e-12",
          "[kernels]") {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> v(std::size_t{1} << 24);
  long double want = 0;
  for (auto& x : v) {
    x = unit(rng);
    want += x;
  }
  const Partial p = run_array("sum", v, 1 << 20);
  CHECK(p.n == v.size());
  CHECK(rel_err(static_cast<long double>(p.hi) + p.lo, want) < 1e-12);
  // A plain float accumulator is far off here: the reference really is demanding.
  float naive = 0;
  for (float x : v) naive += x;
  CHECK(rel_err(naive, want) > 1e-6);
}

TEST_CASE("kernel sum keeps low-order bits a running double total loses", "[kernels]") {
  // 2^53 (ulp 2) first, then ones further apart than a block: each 1.0 is a block total of its
  // own, which a running double total would round away (ties to even); the double-double keeps
  // every one.
  std::vector<double> v(1'000'000, 0.0);
  v[0] = 0x1p53;
  for (std::size_t i = 10'000; i < v.size(); i += 10'000) v[i] = 1.0;
  double naive = 0;
  for (double x : v) naive += x;
  REQUIRE(naive == 0x1p53);
  const Partial p = run_array("sum", v, v.size());
  CHECK(static_cast<long double>(p.hi) + p.lo == 0x1p53L + 99.0L);
}

// ---- min / max ----

TEMPLATE_TEST_CASE("kernel min and max find the extremes of every dtype", "[kernels]", float,
                   double, std::int32_t, std::int64_t, std::uint8_t) {
  auto v = random_values<TestType>(10'007, 11);
  // Put the extremes in the scalar tail and in the middle of a vector.
  std::swap(v[0], v[v.size() - 1]);
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  for (std::uint64_t slice : {std::uint64_t{10'007}, std::uint64_t{1'000}, std::uint64_t{7}}) {
    CHECK(run_array("min", v, slice).hi == static_cast<double>(*lo));
    CHECK(run_array("max", v, slice).hi == static_cast<double>(*hi));
  }
}

TEMPLATE_TEST_CASE("kernel min and max return NaN when any element is NaN", "[kernels]", float,
                   double) {
  for (std::size_t at : {std::size_t{0}, std::size_t{500}, std::size_t{1'002}}) {
    auto v = random_values<TestType>(1'003, 3);
    v[at] = std::numeric_limits<TestType>::quiet_NaN();
    INFO("NaN at " << at);
    CHECK(std::isnan(run_array("min", v, 1'003).hi));
    CHECK(std::isnan(run_array("max", v, 1'003).hi));
    CHECK(std::isnan(run_array("max", v, 100).hi));  // and through the merge
  }
}

// ---- mean / var ----

template <typename T>
void check_moments(const std::vector<T>& v, std::uint64_t slice, double tolerance = 1e-12) {
  long double mean = 0;
  for (T x : v) mean += x;
  mean /= v.size();
  long double m2 = 0;
  for (T x : v) m2 += (x - mean) * (x - mean);
  const long double var = m2 / v.size();

  const Params none;
  const Partial pm = run_array("mean", v, slice);
  const JobResult rm = finalize_result(kernel("mean"), pm, none, v.size());
  CHECK(rel_err(rm.value, mean) < 1e-12);
  const Partial pv = run_array("var", v, slice);
  const JobResult rv = finalize_result(kernel("var"), pv, none, v.size());
  CHECK(rel_err(rv.value, var) < tolerance);
  CHECK(rel_err(rv.merged.lo, m2) < tolerance);
}

TEST_CASE("kernel mean and var match a two-pass long double reference", "[kernels]") {
  SECTION("f64 with a large offset (sum of squares would cancel)") {
    auto v = random_values<double>(50'000, 5);
    for (auto& x : v) x = 1e6 + x / 1000;  // mean 1e6, variance ~1/3
    check_moments(v, v.size());
    // Merging slices goes through each slice's mean, a double with an error of ulp(1e6) / 2,
    // which Chan's update multiplies into M2: ~2e-12 relative here, a property of the
    // Partial, not of the kernel. sum(x^2) - n * mean^2 would lose most digits.
    check_moments(v, 12'345, 1e-10);
  }
  SECTION("f32") {
    check_moments(random_values<float>(40'000, 6), 9'999);
  }
  SECTION("i32") {
    check_moments(random_values<std::int32_t>(40'000, 8), 40'000);
  }
  SECTION("u8") {
    check_moments(random_values<std::uint8_t>(40'000, 9), 3'000);
  }
}

TEST_CASE("kernel var of constant data is zero", "[kernels]") {
  const std::vector<double> v(1'000, 0.1);
  const Partial p = run_array("var", v, 300);
  CHECK(p.hi == Approx(0.1).epsilon(1e-15));
  // Not exactly 0: a slice's mean of 0.1s need not round back to 0.1.
  CHECK(std::fabs(finalize_result(kernel("var"), p, {}, v.size()).value) < 1e-30);
  const std::vector<double> exact(1'000, 0.125);
  CHECK(finalize_result(kernel("var"), run_array("var", exact, 300), {}, 1'000).value == 0.0);
}

// ---- nonzero ----

TEST_CASE("kernel nonzero counts elements that are not zero", "[kernels]") {
  const std::vector<double> d = {0.0, -0.0, 1.0, kNaN, -3.5, 0.0, 1e-300};
  CHECK(run_array("nonzero", d, 3).count == 4);  // NaN counts, -0.0 does not (as numpy)
  std::vector<std::uint8_t> b(1'000);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i % 3);
  const Partial p = run_array("nonzero", b, 128);
  CHECK(p.count == 666);
  CHECK(p.n == 1'000);
}

// ---- dot ----

template <typename A, typename B>
void check_dot(std::uint64_t n) {
  std::vector<A> a(n);
  std::vector<B> b(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    a[i] = static_cast<A>((i * 7) % 101);
    b[i] = static_cast<B>(std::is_floating_point_v<B> ? 0.5 + (i % 13) * 0.25 : (i % 13));
  }
  long double want = 0;
  for (std::uint64_t i = 0; i < n; ++i) want += static_cast<long double>(a[i]) * b[i];
  const KernelInfo& k = kernel("dot");
  REQUIRE(k.shape == KernelShape::kReduce2);
  Partial acc = identity_partial(k.combiner);
  const std::uint64_t slice = 1'000;
  for (std::uint64_t f = 0; f < n; f += slice) {
    SliceContext ctx = array_slice(a, f, std::min(slice, n - f));
    ctx.in2 = {b.data() + f, dtype_of<B>()};
    REQUIRE(merge_into(acc, run_ok(k, ctx)).ok());
  }
  CHECK(rel_err(static_cast<long double>(acc.hi) + acc.lo, want) < 1e-14);
}

TEST_CASE("kernel dot accepts mixed dtypes", "[kernels]") {
  check_dot<float, std::int32_t>(5'001);
  check_dot<std::uint8_t, double>(4'321);
  check_dot<std::int64_t, float>(3'000);
  check_dot<double, double>(2'222);
}

// ---- histogram ----

Params hist_params(double lo, double hi, std::int64_t bins) {
  Params p;
  p.set("lo", lo);
  p.set("hi", hi);
  p.set("bins", bins);
  return p;
}

TEST_CASE("kernel histogram counts bins, underflow, overflow and the top edge", "[kernels]") {
  const Params params = hist_params(0.0, 1.0, 4);
  const std::vector<double> v = {
      -0.5, 0.0, 0.1, 0.25, 0.5, 0.74, 0.75, 0.99, 1.0, 2.0, kNaN, -1e9, std::nextafter(1.0, 0.0)};
  const Partial p = run_array("histogram", v, 5, params);
  // bins 0..3, then underflow, then overflow (x >= hi and NaN).
  const std::vector<std::uint64_t> want = {2, 1, 2, 3, 2, 3};
  CHECK(p.bins == want);
  CHECK(p.n == v.size());
}

TEST_CASE("kernel histogram clamps a value that rounds onto the top edge", "[kernels]") {
  const double lo = 0.2, hi = 0.9;
  const double x = std::nextafter(hi, lo);
  // The premise: the bin formula gives exactly `bins` for this x.
  REQUIRE((x - lo) / (hi - lo) * 10 == 10.0);
  const Partial p = run_array("histogram", std::vector<double>{x, lo}, 2, hist_params(lo, hi, 10));
  REQUIRE(p.bins.size() == 12);
  CHECK(p.bins[9] == 1);
  CHECK(p.bins[0] == 1);
  CHECK(p.bins[11] == 0);
}

TEST_CASE("kernel histogram bins integers", "[kernels]") {
  std::vector<std::int32_t> v(100);
  for (int i = 0; i < 100; ++i) v[i] = i - 10;  // -10 .. 89
  const Partial p = run_array("histogram", v, 33, hist_params(0, 80, 8));
  const std::vector<std::uint64_t> want = {10, 10, 10, 10, 10, 10, 10, 10, 10, 10};
  CHECK(p.bins == want);
}

TEST_CASE("kernel histogram validator rejects missing or invalid parameters", "[kernels]") {
  const KernelInfo& k = kernel("histogram");
  REQUIRE(k.validate != nullptr);
  auto code = [&](const Params& p) { return k.validate(p, DType::kF64, 10).error().code; };
  CHECK(k.validate(hist_params(0, 1, 10), DType::kF64, 10).ok());
  Params defaults;  // bins defaults to 10
  defaults.set("lo", 0.0);
  defaults.set("hi", 1.0);
  CHECK(k.validate(defaults, DType::kF64, 10).ok());

  Params no_hi;
  no_hi.set("lo", 0.0);
  CHECK(code(no_hi) == ErrorCode::kInvalidArgument);
  CHECK_THAT(k.validate(no_hi, DType::kF64, 10).error().message, Catch::Contains("'hi'"));
  Params no_lo;
  no_lo.set("hi", 1.0);
  CHECK(code(no_lo) == ErrorCode::kInvalidArgument);
  CHECK(code(hist_params(1, 1, 10)) == ErrorCode::kInvalidArgument);
  CHECK(code(hist_params(2, 1, 10)) == ErrorCode::kInvalidArgument);
  CHECK(code(hist_params(0, 1, 0)) == ErrorCode::kInvalidArgument);
  CHECK(code(hist_params(0, 1, 1'000'001)) == ErrorCode::kInvalidArgument);
  CHECK(k.validate(hist_params(0, 1, 1'000'000), DType::kF64, 10).ok());
  Params fractional = hist_params(0, 1, 10);
  fractional.set("bins", 2.5);
  CHECK(code(fractional) == ErrorCode::kInvalidArgument);
  Params text = hist_params(0, 1, 10);
  text.set("lo", std::string("zero"));
  CHECK(code(text) == ErrorCode::kInvalidArgument);
  Params infinite = hist_params(0, 1, 10);
  infinite.set("hi", std::numeric_limits<double>::infinity());
  CHECK(code(infinite) == ErrorCode::kInvalidArgument);

  // The kernel re-checks: run without validation it fails cleanly instead of misbinning.
  const std::vector<double> v = {1.0};
  Partial out;
  Status s = run_kernel(k, array_slice(v, 0, 1, &no_hi), out);
  CHECK(s.error().code == ErrorCode::kInvalidArgument);
}

// ---- maps ----

template <typename U>
std::vector<U> run_map(const std::string& name, const std::vector<double>& in,
                       const Params& params = {}) {
  std::vector<U> out(in.size());
  const KernelInfo& k = kernel(name);
  REQUIRE(k.shape == KernelShape::kMap);
  const std::uint64_t slice = 3;
  for (std::uint64_t f = 0; f < in.size(); f += slice) {
    SliceContext ctx = array_slice(in, f, std::min<std::uint64_t>(slice, in.size() - f), &params);
    ctx.out = {out.data() + f, dtype_of<U>()};
    const Partial p = run_ok(k, ctx);
    CHECK(p.count == ctx.count);
  }
  return out;
}

TEST_CASE("kernel affine writes f32, f64 and i32 outputs", "[kernels]") {
  Params p;
  p.set("a", 2.0);
  p.set("b", std::int64_t{1});
  const std::vector<double> in = {-2.25, -1.0, 0.0, 0.75, 1.5, 3.0, 0.25};
  CHECK(run_map<double>("affine", in, p) ==
        std::vector<double>{-3.5, -1.0, 1.0, 2.5, 4.0, 7.0, 1.5});
  CHECK(run_map<float>("affine", in, p) ==
        std::vector<float>{-3.5f, -1.0f, 1.0f, 2.5f, 4.0f, 7.0f, 1.5f});
  // Halves round away from zero.
  CHECK(run_map<std::int32_t>("affine", in, p) == std::vector<std::int32_t>{-4, -1, 1, 3, 4, 7, 2});
  // Defaults a=1, b=0: the identity.
  CHECK(run_map<double>("affine", in) == in);
}

TEST_CASE("kernel maps saturate integer outputs and send NaN to zero", "[kernels]") {
  const std::vector<double> in = {1e10, -1e10, kNaN, 2.5, -2.5, 300.0, -3.0, 1e300};
  CHECK(run_map<std::int32_t>("affine", in) ==
        std::vector<std::int32_t>{INT32_MAX, INT32_MIN, 0, 3, -3, 300, -3, INT32_MAX});
  CHECK(run_map<std::uint8_t>("affine", in) ==
        std::vector<std::uint8_t>{255, 0, 0, 3, 0, 255, 0, 255});
  CHECK(run_map<std::int64_t>("square", in) ==
        std::vector<std::int64_t>{INT64_MAX, INT64_MAX, 0, 6, 6, 90'000, 9, INT64_MAX});
  // f32 overflows to infinity rather than saturating.
  CHECK(std::isinf(run_map<float>("affine", in)[7]));
}

TEST_CASE("kernel square, cube and pow compute in double", "[kernels]") {
  const std::vector<double> in = {-3.0, -0.5, 0.0, 1.5, 4.0, 10.0};
  CHECK(run_map<double>("square", in) == std::vector<double>{9.0, 0.25, 0.0, 2.25, 16.0, 100.0});
  CHECK(run_map<double>("cube", in) ==
        std::vector<double>{-27.0, -0.125, 0.0, 3.375, 64.0, 1000.0});
  // -0.125 rounds to 0, 3.375 to 3.
  CHECK(run_map<std::int32_t>("cube", in) == std::vector<std::int32_t>{-27, 0, 0, 3, 64, 1000});
  // k defaults to 2.
  CHECK(run_map<double>("pow", in) == run_map<double>("square", in));
  Params half;
  half.set("k", 0.5);
  const auto roots = run_map<float>("pow", {0.0, 2.25, 16.0, 100.0}, half);
  CHECK(roots == std::vector<float>{0.0f, 1.5f, 4.0f, 10.0f});
  const auto nan_root = run_map<double>("pow", {-1.0}, half);
  CHECK(std::isnan(nan_root[0]));
}

TEST_CASE("kernel maps read integer inputs", "[kernels]") {
  const std::vector<std::uint8_t> in = {0, 1, 2, 255};
  std::vector<std::int32_t> out(in.size());
  SliceContext ctx = array_slice(in, 0, in.size());
  ctx.out = {out.data(), DType::kI32};
  run_ok(kernel("cube"), ctx);
  CHECK(out == std::vector<std::int32_t>{0, 1, 8, 16'581'375});
}

TEST_CASE("kernel map validators reject non-numeric parameters", "[kernels]") {
  Params text;
  text.set("a", std::string("two"));
  CHECK(kernel("affine").validate(text, DType::kF64, 1).error().code ==
        ErrorCode::kInvalidArgument);
  CHECK(kernel("affine").validate(Params{}, DType::kF64, 1).ok());
  Params k_text;
  k_text.set("k", std::string("x"));
  CHECK(kernel("pow").validate(k_text, DType::kF64, 1).error().code == ErrorCode::kInvalidArgument);
  // The kernel itself refuses too, rather than silently using the default.
  const std::vector<double> in = {2.0};
  std::vector<double> out(1);
  SliceContext ctx = array_slice(in, 0, 1, &text);
  ctx.out = {out.data(), DType::kF64};
  Partial p;
  CHECK(run_kernel(kernel("affine"), ctx, p).error().code == ErrorCode::kInvalidArgument);
}

// ---- pi ----

TEST_CASE("kernel pi with 10^6 steps is within 1e-9 of M_PI", "[kernels]") {
  const std::uint64_t n = 1'000'000;
  const Partial p = run_range("pi", 0, n, 300'000);  // four uneven slices
  CHECK(p.n == n);
  const double value = finalize_result(kernel("pi"), p, {}, n).value;
  CHECK(std::fabs(value - M_PI) < 1e-9);
  // Slicing changes only the merge's last bits.
  CHECK(run_range("pi", 0, n, n).hi == Approx(value).epsilon(1e-15));
  // The job's first point does not move the integration interval.
  CHECK(run_range("pi", 5'000, n, 250'000).hi == Approx(value).epsilon(1e-15));
}

TEST_CASE("kernel pi with few steps shows the midpoint rule's error", "[kernels]") {
  // N = 1: one midpoint at 0.5, so the value is 4 / 1.25 = 3.2: proves x = (i + 0.5) / N.
  CHECK(run_range("pi", 0, 1, 1).hi == 3.2);
  const double ten = run_range("pi", 0, 10, 3).hi;
  CHECK(std::fabs(ten - M_PI) > 1e-4);
  CHECK(std::fabs(ten - M_PI) < 1e-2);
}

// ---- mcpi ----

Params seed(std::int64_t s) {
  Params p;
  p.set("seed", s);
  return p;
}

TEST_CASE("kernel mcpi is reproducible and depends on seed and first", "[kernels]") {
  const KernelInfo& k = kernel("mcpi");
  const Params s1 = seed(1), s2 = seed(2);
  // Counts of 20 small slices: two streams agreeing on all by chance is out of the question.
  auto counts = [&](const Params& p, std::uint64_t first) {
    std::vector<std::uint64_t> c;
    for (std::uint64_t i = 0; i < 20; ++i) {
      c.push_back(run_ok(k, range_slice(i, first + i * 100, 100, 0, 1'000'000, &p)).count);
    }
    return c;
  };
  CHECK(counts(s1, 40'000) == counts(s1, 40'000));
  CHECK(counts(s1, 40'000) != counts(s2, 40'000));
  CHECK(counts(s1, 40'000) != counts(s1, 50'000));
  // The stream is indexed by the point, so the slicing does not change the total.
  CHECK(run_range("mcpi", 0, 100'000, 100'000, s1).count ==
        run_range("mcpi", 0, 100'000, 7'777, s1).count);
}

TEST_CASE("kernel mcpi finalize estimates pi from 10^6 points", "[kernels]") {
  const std::uint64_t n = 1'000'000;
  const Params p = seed(12345);
  const Partial merged = run_range("mcpi", 0, n, 65'536, p);
  CHECK(merged.n == n);
  const double value = finalize_result(kernel("mcpi"), merged, p, n).value;
  CHECK(value == 4.0 * static_cast<double>(merged.count) / n);
  CHECK(std::fabs(value - M_PI) < 0.01);
}

TEST_CASE("kernel mcpi validator wants an integer seed", "[kernels]") {
  const KernelInfo& k = kernel("mcpi");
  CHECK(k.validate(seed(-3), DType::kNone, 10).ok());
  Params bad;
  bad.set("seed", 1.5);
  CHECK(k.validate(bad, DType::kNone, 10).error().code == ErrorCode::kInvalidArgument);
}

// ---- primes ----

std::uint64_t primes_by_trial_division(std::uint64_t lo, std::uint64_t hi) {
  std::uint64_t c = 0;
  for (std::uint64_t v = std::max<std::uint64_t>(lo, 2); v < hi; ++v) {
    bool prime = true;
    for (std::uint64_t d = 2; d * d <= v; ++d) {
      if (v % d == 0) {
        prime = false;
        break;
      }
    }
    c += prime;
  }
  return c;
}

TEST_CASE("kernel primes counts 78498 primes below 10^6 in 65536-point slices", "[kernels]") {
  const Partial p = run_range("primes", 0, 1'000'000, 65'536);
  CHECK(p.count == 78'498);
  CHECK(p.n == 1'000'000);
}

TEST_CASE("kernel primes handles the smallest ranges", "[kernels]") {
  CHECK(run_range("primes", 0, 2, 2).count == 0);  // [0, 2)
  CHECK(run_range("primes", 2, 1, 1).count == 1);  // [2, 3)
  CHECK(run_range("primes", 0, 3, 1).count == 1);  // [0, 3) one point at a time
  CHECK(run_range("primes", 4, 1, 1).count == 0);
  CHECK(run_range("primes", 97, 1, 1).count == 1);
}

TEST_CASE("kernel primes agrees with trial division, also near its 10^12 limit", "[kernels]") {
  CHECK(run_range("primes", 999'000, 3'000, 1'000).count ==
        primes_by_trial_division(999'000, 1'002'000));
  const std::uint64_t top = 1'000'000'000'000ULL;
  CHECK(run_range("primes", top - 600, 600, 256).count == primes_by_trial_division(top - 600, top));
  // One past the limit is refused, not miscounted.
  Partial out;
  Status s = run_kernel(kernel("primes"), range_slice(0, top, 1, top, 1), out);
  CHECK(s.error().code == ErrorCode::kInvalidArgument);
}

// ---- testing kernels ----

TEST_CASE("kernel fail_at fails only on its slice", "[kernels]") {
  const KernelInfo& k = kernel("fail_at");
  Params p;
  p.set("slice", std::int64_t{2});
  REQUIRE(k.validate(p, DType::kNone, 100).ok());
  CHECK(k.validate(Params{}, DType::kNone, 100).error().code == ErrorCode::kInvalidArgument);
  for (std::uint64_t slice = 0; slice < 4; ++slice) {
    Partial out;
    Status s = run_kernel(k, range_slice(slice, slice * 10, 10, 0, 40, &p), out);
    if (slice == 2) {
      CHECK(s.error().code == ErrorCode::kKernelFailed);
      CHECK(s.error().message == "fail_at: slice 2 failed on purpose");
    } else {
      CHECK(s.ok());
      CHECK(out.count == 10);
    }
  }
}

TEST_CASE("kernel hang_at hangs only on its slice and validates its parameters", "[kernels]") {
  const KernelInfo& k = kernel("hang_at");
  Params p;
  p.set("slice", std::int64_t{1});
  p.set("ms", 30.0);
  REQUIRE(k.validate(p, DType::kNone, 100).ok());
  CHECK(k.validate(Params{}, DType::kNone, 100).error().code == ErrorCode::kInvalidArgument);
  Params too_long = p;
  too_long.set("ms", 4'000'000.0);
  CHECK(k.validate(too_long, DType::kNone, 100).error().code == ErrorCode::kInvalidArgument);
  for (std::uint64_t slice = 0; slice < 3; ++slice) {
    const auto t0 = std::chrono::steady_clock::now();
    Partial out;
    REQUIRE(run_kernel(k, range_slice(slice, slice * 10, 10, 0, 30, &p), out).ok());
    const auto took = std::chrono::steady_clock::now() - t0;
    INFO("slice " << slice);
    CHECK((took >= std::chrono::milliseconds(30)) == (slice == 1));
    CHECK(out.count == 10);
  }
}

TEST_CASE("kernel abort_at needs a slice and counts the slices it spares", "[kernels]") {
  // The aborting slice itself is exercised end to end (tests/integration/fault_poison_test.cpp):
  // it ends the process.
  const KernelInfo& k = kernel("abort_at");
  Params p;
  p.set("slice", std::int64_t{5});
  REQUIRE(k.validate(p, DType::kNone, 100).ok());
  CHECK(k.validate(Params{}, DType::kNone, 100).error().code == ErrorCode::kInvalidArgument);
  Partial out;
  REQUIRE(run_kernel(k, range_slice(4, 40, 10, 0, 100, &p), out).ok());
  CHECK(out.count == 10);
}

TEST_CASE("kernel noop and noop_range count points without reading them", "[kernels]") {
  const std::vector<float> v(100, 1.0f);
  CHECK(run_ok(kernel("noop"), array_slice(v, 20, 30)).count == 30);
  CHECK(run_range("noop_range", 7, 1'000, 300).count == 1'000);
}

TEST_CASE("kernel sleep sleeps ms per slice", "[kernels]") {
  Params p;
  p.set("ms", 20.0);
  const auto t0 = std::chrono::steady_clock::now();
  const Partial out = run_ok(kernel("sleep"), range_slice(0, 0, 5, 0, 5, &p));
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(elapsed >= std::chrono::milliseconds(20));
  CHECK(out.count == 5);
  Params negative;
  negative.set("ms", -1.0);
  CHECK(kernel("sleep").validate(negative, DType::kNone, 5).error().code ==
        ErrorCode::kInvalidArgument);
}

// ---- cross-cutting ----

TEST_CASE("kernel results are deterministic, whatever the data's alignment", "[kernels]") {
  const auto v = random_values<float>(50'001, 99);
  // The same values one element further into a buffer: different alignment, same slice.
  std::vector<float> shifted(v.size() + 1);
  std::copy(v.begin(), v.end(), shifted.begin() + 1);
  const Params h = hist_params(-500, 500, 37);
  for (const char* name : {"sum", "mean", "var", "min", "max", "histogram"}) {
    const KernelInfo& k = kernel(name);
    const Partial a = run_ok(k, array_slice(v, 0, v.size(), &h));
    const Partial b = run_ok(k, array_slice(v, 0, v.size(), &h));
    const Partial c = run_ok(k, array_slice(shifted, 1, v.size(), &h));
    INFO(name);
    CHECK(same_bits(a.hi, b.hi));
    CHECK(same_bits(a.lo, b.lo));
    CHECK(same_bits(a.hi, c.hi));
    CHECK(same_bits(a.lo, c.lo));
    CHECK(a.bins == c.bins);
  }
  const Partial p1 = run_range("pi", 0, 123'457, 10'000);
  const Partial p2 = run_range("pi", 0, 123'457, 10'000);
  CHECK(same_bits(p1.hi, p2.hi));
  CHECK(same_bits(p1.lo, p2.lo));
}

TEST_CASE("kernel functions refuse a missing dtype instead of crashing", "[kernels]") {
  const std::vector<double> v = {1.0};
  for (const char* name : {"sum", "min", "mean", "nonzero", "dot", "fdot", "histogram", "affine"}) {
    SliceContext ctx = array_slice(v, 0, 1);
    ctx.in.dtype = DType::kNone;
    Partial out;
    INFO(name);
    // Called directly, past run_kernel's own check of the views.
    Status s = kernel(name).fn(ctx, out);
    CHECK(s.error().code == ErrorCode::kInvalidArgument);
    CHECK_THAT(s.error().message, Catch::Contains(name));
  }
}

TEST_CASE("kernel registry holds every built-in with its shape and a help line", "[kernels]") {
  const std::vector<std::string> expected = {
      "sum",    "fsum",      "min",        "max",    "mean",    "var",      "nonzero", "dot",
      "fdot",   "histogram", "affine",     "square", "pow",     "cube",     "pi",      "mcpi",
      "primes", "noop",      "noop_range", "sleep",  "fail_at", "abort_at", "hang_at"};
  auto names = KernelRegistry::builtin().names();
  std::sort(names.begin(), names.end());
  auto want = expected;
  std::sort(want.begin(), want.end());
  CHECK(names == want);
  for (const auto& name : expected) {
    INFO(name);
    CHECK_FALSE(kernel(name).help.empty());
  }
  CHECK(kernel("dot").shape == KernelShape::kReduce2);
  CHECK(kernel("cube").shape == KernelShape::kMap);
  CHECK(kernel("primes").shape == KernelShape::kRange);
  CHECK(kernel("var").combiner == Combiner::kMoments);
  CHECK(kernel("histogram").combiner == Combiner::kHistogram);
  CHECK(kernel("fsum").combiner == Combiner::kExactSum);
  CHECK(kernel("fdot").combiner == Combiner::kExactSum);
  CHECK(kernel("fdot").shape == KernelShape::kReduce2);
}

}  // namespace
}  // namespace zwq
