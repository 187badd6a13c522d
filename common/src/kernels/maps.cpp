// Maps: one input array -> an output array of the same length, element by element.
//
// Every map reads its input dtype, computes in double and writes the output dtype. The Partial
// is a kCount of the elements written.
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/kernels.hpp"

namespace zwq::kernels {
namespace {

// Converts a computed double to the output type. Integers: round half away from zero (as
// std::round, independent of the FP rounding mode, so every worker agrees), saturate to the
// type's range, NaN -> 0. Floats: plain IEEE conversion (out-of-range values become +-inf in f32).
template <typename U>
U to_output(double y) {
  if constexpr (std::is_floating_point_v<U>) {
    return static_cast<U>(y);
  } else {
    using Limits = std::numeric_limits<U>;
    if (y != y) return 0;
    // Both limits are exact as doubles except int64 max, which becomes 2^63. Past a limit the
    // rounded value is past it too; inside, it is inside (or on) the range.
    if (y <= static_cast<double>(Limits::min())) return Limits::min();
    if (y >= static_cast<double>(Limits::max())) return Limits::max();
    // Inline rounding: std::round is a library call on baseline x86-64 and measured slower.
    // y - trunc(y) is exact, and y is already an integer whenever it is too large for that.
    auto t = static_cast<std::int64_t>(y);
    const double frac = y - static_cast<double>(t);
    t += static_cast<int>(frac >= 0.5) - static_cast<int>(frac <= -0.5);
    return static_cast<U>(t);
  }
}

// Runs y = op(x) over the slice. `in` and `out` may be the same memory (an in-place map of one
// dtype): each element is read before it is written.
template <typename Op>
Status map_kernel(std::string_view name, const SliceContext& ctx, Partial& out, const Op& op) {
  if (Status s = check_view(name, "input", ctx.in.data, ctx.in.dtype); !s) return s;
  if (Status s = check_view(name, "output", ctx.out.data, ctx.out.dtype); !s) return s;
  visit_dtype(ctx.in.dtype, [&](auto tag_in) {
    visit_dtype(ctx.out.dtype, [&](auto tag_out) {
      using U = decltype(tag_out);
      const auto* x = ctx.in.as<decltype(tag_in)>();
      U* y = ctx.out.as<U>();
      for (std::uint64_t i = 0; i < ctx.count; ++i) {
        y[i] = to_output<U>(op(static_cast<double>(x[i])));
      }
    });
  });
  out.n = ctx.count;
  out.count = ctx.count;
  return Status::Ok();
}

// A numeric parameter with a default; errors on a string or a non-finite value.
Result<double> param_or(std::string_view kernel, const SliceContext& ctx, const std::string& name,
                        double fallback) {
  if (ctx.params == nullptr) return fallback;
  auto v = number_param(kernel, *ctx.params, name);
  if (!v) return v.error();
  return v.value().value_or(fallback);
}

}  // namespace

Status affine(const SliceContext& ctx, Partial& out) {
  auto a = param_or("affine", ctx, "a", 1.0);
  if (!a) return a.error();
  auto b = param_or("affine", ctx, "b", 0.0);
  if (!b) return b.error();
  const double av = a.value(), bv = b.value();
  return map_kernel("affine", ctx, out, [av, bv](double x) { return av * x + bv; });
}

Status square(const SliceContext& ctx, Partial& out) {
  return map_kernel("square", ctx, out, [](double x) { return x * x; });
}

Status power(const SliceContext& ctx, Partial& out) {
  auto k = param_or("pow", ctx, "k", 2.0);
  if (!k) return k.error();
  const double kv = k.value();
  return map_kernel("pow", ctx, out, [kv](double x) { return std::pow(x, kv); });
}

Status cube(const SliceContext& ctx, Partial& out) {
  return map_kernel("cube", ctx, out, [](double x) { return x * x * x; });
}

Status validate_affine(const Params& params, DType, std::uint64_t) {
  for (const char* name : {"a", "b"}) {
    auto v = number_param("affine", params, name);
    if (!v) return v.error();
  }
  return Status::Ok();
}

Status validate_pow(const Params& params, DType, std::uint64_t) {
  auto v = number_param("pow", params, "k");
  if (!v) return v.error();
  return Status::Ok();
}

}  // namespace zwq::kernels
