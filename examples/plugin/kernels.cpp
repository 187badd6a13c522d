// Three user kernels, one per common shape. Each is a plain function; ZWQ_KERNEL registers it
// with its combiner (how the broker merges slice results) and its shape (what a slice reads).
#include <cmath>
#include <cstdint>
#include <span>
#include <zwq/kernel_sdk.hpp>

namespace {

// reduce -> sum: the sum of squares of a float64 array.
double sumsq(std::span<const double> x) {
  double s = 0;
  for (double v : x) s += v * v;
  return s;
}

// map -> count: y = factor * x over float32 arrays (the count of elements written is implied).
void scale(std::span<const float> x, std::span<float> y, const zwq::Params& p) {
  const auto factor = static_cast<float>(p.get_double("factor", 2.0));
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = factor * x[i];
}

// params -> gather: the number of Collatz steps from `n` down to 1, one task per parameter set.
std::int64_t collatz(const zwq::Params& p) {
  std::int64_t n = p.get_int("n", 1), steps = 0;
  while (n > 1) {
    n = n % 2 == 0 ? n / 2 : 3 * n + 1;
    ++steps;
  }
  return steps;
}

}  // namespace

ZWQ_KERNEL("sumsq", sumsq, sum, reduce, .help = "sum of x*x (f64)");
ZWQ_KERNEL("scale", scale, count, map, .help = "y = factor * x (f32, factor=2)");
ZWQ_KERNEL("collatz", collatz, gather, params, .help = "Collatz steps from n to 1");
