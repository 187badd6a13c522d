// The table of built-in kernels. Adding one: write its function (kernels.hpp) and add a line.
#include <cassert>
#include <iterator>

#include "kernels/kernels.hpp"

namespace zwq {
namespace {

using KS = KernelShape;
using C = Combiner;
namespace k = kernels;

// {name, fn, combiner, shape, validate, finalize, help, the parameter names it reads}
const KernelInfo kBuiltins[] = {
    // Reductions over one array (two for dot).
    {"sum", k::sum, C::kSum, KS::kReduce, nullptr, nullptr, "sum of the elements", ""},
    {"fsum", k::fsum, C::kExactSum, KS::kReduce, nullptr, nullptr,
     "exact sum of the elements, correctly rounded (math.fsum)", ""},
    {"min", k::minimum, C::kMin, KS::kReduce, nullptr, nullptr, "smallest element (NaN if any)",
     ""},
    {"max", k::maximum, C::kMax, KS::kReduce, nullptr, nullptr, "largest element (NaN if any)", ""},
    {"mean", k::moments, C::kMoments, KS::kReduce, nullptr, nullptr, "mean of the elements", ""},
    {"var", k::moments, C::kMoments, KS::kReduce, nullptr, k::finalize_var,
     "population variance of the elements", ""},
    {"nonzero", k::nonzero, C::kCount, KS::kReduce, nullptr, nullptr, "count of elements != 0", ""},
    {"dot", k::dot, C::kSum, KS::kReduce2, nullptr, nullptr, "sum of input[i] * input2[i]", ""},
    {"fdot", k::fdot, C::kExactSum, KS::kReduce2, nullptr, nullptr,
     "exact sum of input[i] * input2[i], correctly rounded (f64 products: to 2^-1074)", ""},
    {"histogram", k::histogram, C::kHistogram, KS::kReduce, k::validate_histogram, nullptr,
     "counts in bins=10 equal bins over [lo, hi), then underflow and overflow (incl. NaN)",
     "lo hi bins"},
    // Maps: input -> output array of any dtype (integers round and saturate).
    {"affine", k::affine, C::kCount, KS::kMap, k::validate_affine, nullptr,
     "y = a*x + b (a=1, b=0)", "a b"},
    {"square", k::square, C::kCount, KS::kMap, nullptr, nullptr, "y = x*x", ""},
    {"pow", k::power, C::kCount, KS::kMap, k::validate_pow, nullptr, "y = pow(x, k) (k=2)", "k"},
    {"cube", k::cube, C::kCount, KS::kMap, nullptr, nullptr, "y = x*x*x", ""},
    // Ranges of integer points.
    {"pi", k::pi, C::kSum, KS::kRange, nullptr, nullptr, "pi by the midpoint rule with count steps",
     ""},
    {"mcpi", k::mcpi, C::kCount, KS::kRange, k::validate_mcpi, k::finalize_mcpi,
     "pi by Monte Carlo with count points (seed=0)", "seed"},
    {"primes", k::primes, C::kCount, KS::kRange, k::validate_primes, nullptr,
     "count of primes in [first, first + count), up to 10^12", ""},
    // Tests and benchmarks.
    {"noop", k::noop, C::kCount, KS::kReduce, nullptr, nullptr, "reads nothing (benchmarks)", ""},
    {"noop_range", k::noop, C::kCount, KS::kRange, nullptr, nullptr, "does nothing (benchmarks)",
     ""},
    {"sleep", k::sleep_ms, C::kCount, KS::kRange, k::validate_sleep, nullptr,
     "sleeps ms=1 milliseconds per slice (tests)", "ms"},
    {"fail_at", k::fail_at, C::kCount, KS::kRange, k::validate_fail_at, nullptr,
     "fails on slice number `slice` (tests)", "slice"},
    {"abort_at", k::abort_at, C::kCount, KS::kRange, k::validate_abort_at, nullptr,
     "kills its worker (std::abort) on slice number `slice` (fault tests)", "slice"},
    {"hang_at", k::hang_at, C::kCount, KS::kRange, k::validate_hang_at, nullptr,
     "hangs ms=600000 ms on slice number `slice` (fault tests)", "slice ms"},
};

KernelRegistry make_builtin() {
  KernelRegistry registry;
  for (const KernelInfo& info : kBuiltins) {
    [[maybe_unused]] const Status added = registry.add(info);
    assert(added.ok() && "duplicate or malformed built-in kernel");
  }
  return registry;
}

}  // namespace

const KernelRegistry& KernelRegistry::builtin() {
  static const KernelRegistry registry = make_builtin();  // built once; thread-safe init
  return registry;
}

}  // namespace zwq
