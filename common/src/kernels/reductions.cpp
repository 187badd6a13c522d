// Reductions: one input array (two for dot) -> one Partial.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/exact_dot.hpp"
#include "kernels/exact_sum.hpp"
#include "kernels/kernels.hpp"
#include "kernels/stream_sum.hpp"

namespace zwq::kernels {
namespace {

// -Wpedantic rejects the bare name; __extension__ says we mean it (GCC and Clang).
__extension__ typedef __int128 Int128;

template <typename T>
constexpr bool kIsFloat = std::is_floating_point_v<T>;

// Converts an exact integer to the double-double closest to it. The remainder is exact for
// |v| < 2^106: a sum of 2^40 int64 values stays below 2^103.
void int128_to_dd(Int128 v, double& hi, double& lo) {
  hi = static_cast<double>(v);
  lo = static_cast<double>(v - static_cast<Int128>(hi));
}

// Exact sum of integers. Each block is summed in lanes the compiler can vectorise, then added to
// a 128-bit total. Bytes go in blocks of 256 into 16-bit lanes (256 * 255 fits; eight lanes per
// SSE2 vector measured twice as fast as 32-bit ones); wider types in blocks of kBlock into
// 64-bit lanes (kBlock * 2^32 fits). int64 elements are split into a signed high half and an
// unsigned low half so that their block sums fit as well.
template <typename T>
Int128 exact_int_sum(const T* x, std::uint64_t n) {
  constexpr std::uint64_t kIntBlock = sizeof(T) == 1 ? 256 : kBlock;
  using Acc = std::conditional_t<sizeof(T) == 1, std::uint16_t, std::int64_t>;
  Int128 total = 0;
  for (std::uint64_t start = 0; start < n; start += kIntBlock) {
    const std::uint64_t end = std::min(n, start + kIntBlock);
    if constexpr (sizeof(T) == 8) {
      std::int64_t high = 0;
      std::uint64_t low = 0;
      for (std::uint64_t i = start; i < end; ++i) {
        high += x[i] >> 32;  // arithmetic shift (defined since C++20)
        low += static_cast<std::uint32_t>(x[i]);
      }
      total += static_cast<Int128>(high) * (Int128{1} << 32) + low;
    } else {
      Acc s = 0;
      for (std::uint64_t i = start; i < end; ++i) s = static_cast<Acc>(s + x[i]);
      total += s;
    }
  }
  return total;
}

Status check_in(std::string_view kernel, const SliceContext& ctx) {
  return check_view(kernel, "input", ctx.in.data, ctx.in.dtype);
}

// GCC/Clang vector of 16 bytes: the SSE2 width every x86-64 has (wider types get split into
// scalar code on targets without AVX). Used where the plain loop does not vectorise: without
// -ffast-math the compiler will not reorder a floating-point min/max reduction itself.
template <typename T>
using Vec16 [[gnu::vector_size(16)]] = T;

// Smallest (kWantMax false) or largest element as a double; NaN if any element is NaN, as
// numpy does. Two vectors of running extremes plus a NaN mask, then the lanes and the tail.
template <bool kWantMax, typename T>
double extreme(const T* x, std::uint64_t n) {
  using V = Vec16<T>;
  constexpr std::uint64_t kWidth = sizeof(V) / sizeof(T);
  auto pick = [](auto a, auto m) {
    if constexpr (kWantMax) {
      return a > m ? a : m;
    } else {
      return a < m ? a : m;
    }
  };
  V m0, m1;
  for (std::uint64_t j = 0; j < kWidth; ++j) m0[j] = m1[j] = x[0];
  decltype(m0 != m0) nan = {};
  std::uint64_t i = 0;
  for (; i + 2 * kWidth <= n; i += 2 * kWidth) {
    V a, b;
    std::memcpy(&a, x + i, sizeof a);  // unaligned loads
    std::memcpy(&b, x + i + kWidth, sizeof b);
    m0 = pick(a, m0);
    m1 = pick(b, m1);
    if constexpr (kIsFloat<T>) nan |= (a != a) | (b != b);
  }
  T m = x[0];
  bool any_nan = false;
  for (std::uint64_t j = 0; j < kWidth; ++j) {
    m = pick(m1[j], pick(m0[j], m));
    any_nan |= nan[j] != 0;
  }
  for (; i < n; ++i) {
    m = pick(x[i], m);
    if constexpr (kIsFloat<T>) any_nan |= x[i] != x[i];
  }
  return any_nan ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(m);
}

template <bool kWantMax>
Status extreme_kernel(const SliceContext& ctx, Partial& out) {
  if (Status s = check_in(kWantMax ? "max" : "min", ctx); !s) return s;
  out.n = ctx.count;
  if (ctx.count == 0) return Status::Ok();  // keep the identity
  out.hi = visit_dtype(ctx.in.dtype, [&](auto tag) {
    return extreme<kWantMax>(ctx.in.as<decltype(tag)>(), ctx.count);
  });
  return Status::Ok();
}

// The histogram's parameters, checked once for the validator and again by the kernel (which may
// be run without the validator and must not index out of range).
struct HistSpec {
  std::uint64_t bins = 0;
  double lo = 0;
  double hi = 0;
};

// Upper bound on bins: the Partial carries every bin on the wire for every slice.
constexpr std::int64_t kMaxBins = 1'000'000;
constexpr std::int64_t kDefaultBins = 10;

Result<HistSpec> parse_histogram(const Params& params) {
  auto bins = number_param("histogram", params, "bins");
  if (!bins) return bins.error();
  auto lo = number_param("histogram", params, "lo");
  if (!lo) return lo.error();
  auto hi = number_param("histogram", params, "hi");
  if (!hi) return hi.error();
  const double b = bins.value().value_or(kDefaultBins);
  if (b != std::floor(b) || b < 1 || b > kMaxBins) {
    return invalid("histogram", "parameter 'bins' must be an integer in 1.." +
                                    std::to_string(kMaxBins) + " (got " + std::to_string(b) + ")");
  }
  if (!lo.value() || !hi.value()) {
    return invalid("histogram", "parameters 'lo' and 'hi' (the range of the bins) are required");
  }
  HistSpec spec{static_cast<std::uint64_t>(b), *lo.value(), *hi.value()};
  if (!(spec.lo < spec.hi) || !std::isfinite(spec.hi - spec.lo)) {
    return invalid("histogram",
                   "needs lo < hi with a finite width (got lo=" + std::to_string(spec.lo) +
                       ", hi=" + std::to_string(spec.hi) + ")");
  }
  return spec;
}

// Layout of the counts: bins[0 .. bins), then underflow (x < lo), then overflow (x >= hi).
// NaN is not below lo, so it is counted with the overflow rather than dropped: the counts then
// always add up to n.
template <typename T>
void fill_histogram(const T* x, std::uint64_t n, const HistSpec& spec, std::uint64_t* counts) {
  const double width = spec.hi - spec.lo;
  const double nbins = static_cast<double>(spec.bins);
  for (std::uint64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    if (v < spec.lo) {
      ++counts[spec.bins];
    } else if (!(v < spec.hi)) {  // also NaN
      ++counts[spec.bins + 1];
    } else {
      // v >= lo, so the quotient is >= 0 and truncation is floor. Rounding can give exactly
      // `bins` just below hi: that value belongs to the top bin.
      auto k = static_cast<std::uint64_t>((v - spec.lo) / width * nbins);
      ++counts[std::min(k, spec.bins - 1)];
    }
  }
}

}  // namespace

Status sum(const SliceContext& ctx, Partial& out) {
  if (Status s = check_in("sum", ctx); !s) return s;
  out.n = ctx.count;
  visit_dtype(ctx.in.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = ctx.in.as<T>();
    if constexpr (kIsFloat<T>) {
      stream_sum(x, ctx.count, out.hi, out.lo, best_isa());
    } else {
      int128_to_dd(exact_int_sum(x, ctx.count), out.hi, out.lo);
    }
  });
  return Status::Ok();
}

// The accumulator of fsum and fdot: its expansion's capacity is kept from slice to slice.
ExactSum& fresh_exact_sum() {
  thread_local ExactSum acc;
  acc.expansion.clear();
  acc.special = 0;
  acc.has_special = false;
  return acc;
}

// The slice's exact sum as an expansion in (hi, lo, terms): two doubles or fewer, so no
// allocation, unless the slice's bits span more than two doubles hold.
void set_exact_partial(const ExactSum& acc, Partial& out) {
  if (acc.has_special) {
    out.hi = acc.special;
    out.lo = 0;
    out.terms.clear();
  } else {
    set_exact_terms(out, acc.expansion);
  }
}

Status fsum(const SliceContext& ctx, Partial& out) {
  if (Status s = check_in("fsum", ctx); !s) return s;
  out.n = ctx.count;
  ExactSum& acc = fresh_exact_sum();
  visit_dtype(ctx.in.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = ctx.in.as<T>();
    if constexpr (kIsFloat<T>) {
      exact_sum(x, ctx.count, acc, best_isa());
    } else {
      double hi = 0, lo = 0;
      int128_to_dd(exact_int_sum(x, ctx.count), hi, lo);  // exact: |sum| < 2^106
      if (lo != 0) acc.expansion.push_back(lo);
      if (hi != 0) acc.expansion.push_back(hi);
    }
  });
  set_exact_partial(acc, out);
  return Status::Ok();
}

Status fdot(const SliceContext& ctx, Partial& out) {
  if (Status s = check_in("fdot", ctx); !s) return s;
  if (Status s = check_view("fdot", "second input", ctx.in2.data, ctx.in2.dtype); !s) return s;
  out.n = ctx.count;
  ExactSum& acc = fresh_exact_sum();
  exact_dot(ctx.in.data, ctx.in.dtype, ctx.in2.data, ctx.in2.dtype, ctx.count, acc, best_isa());
  set_exact_partial(acc, out);
  return Status::Ok();
}

Status minimum(const SliceContext& ctx, Partial& out) {
  return extreme_kernel<false>(ctx, out);
}
Status maximum(const SliceContext& ctx, Partial& out) {
  return extreme_kernel<true>(ctx, out);
}

// Two passes over the slice (cheap while a slice fits in cache): the mean, then M2 around it.
// Both sums are double-double, and M2 avoids the cancellation of sum(x^2) - n*mean^2.
Status moments(const SliceContext& ctx, Partial& out) {
  if (Status s = check_in("mean/var", ctx); !s) return s;
  out.n = ctx.count;
  if (ctx.count == 0) return Status::Ok();
  visit_dtype(ctx.in.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = ctx.in.as<T>();
    auto element = [x](std::uint64_t i) { return static_cast<double>(x[i]); };
    double hi = 0, lo = 0;
    dd_sum(ctx.count, element, hi, lo);
    const double mean = (hi + lo) / static_cast<double>(ctx.count);
    double m2_hi = 0, m2_lo = 0;
    auto sq_dev = [x, mean](std::uint64_t i) {
      const double d = static_cast<double>(x[i]) - mean;
      return d * d;
    };
    dd_sum(ctx.count, sq_dev, m2_hi, m2_lo);
    out.hi = mean;
    out.lo = m2_hi + m2_lo;
  });
  return Status::Ok();
}

double finalize_var(const Partial& merged, const Params&, std::uint64_t) {
  return merged.n == 0 ? std::numeric_limits<double>::quiet_NaN()
                       : merged.lo / static_cast<double>(merged.n);
}

// Counts elements != 0. NaN counts (it is not zero); -0.0 does not. Both as numpy.
Status nonzero(const SliceContext& ctx, Partial& out) {
  if (Status s = check_in("nonzero", ctx); !s) return s;
  out.n = ctx.count;
  out.count = visit_dtype(ctx.in.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = ctx.in.as<T>();
    std::uint64_t c = 0;
    for (std::uint64_t i = 0; i < ctx.count; ++i) c += (x[i] != T{0});
    return c;
  });
  return Status::Ok();
}

// Sum of in[i] * in2[i], each product rounded in double, summed as in `sum`.
Status dot(const SliceContext& ctx, Partial& out) {
  if (Status s = check_in("dot", ctx); !s) return s;
  if (Status s = check_view("dot", "second input", ctx.in2.data, ctx.in2.dtype); !s) return s;
  out.n = ctx.count;
  visit_dtype(ctx.in.dtype, [&](auto tag_a) {
    visit_dtype(ctx.in2.dtype, [&](auto tag_b) {
      using A = decltype(tag_a);
      using B = decltype(tag_b);
      const A* a = ctx.in.as<A>();
      const B* b = ctx.in2.as<B>();
      if constexpr (std::is_same_v<A, B> && kIsFloat<A>) {
        stream_dot(a, b, ctx.count, out.hi, out.lo, best_isa());  // the same sums, streamed
      } else {
        auto product = [a, b](std::uint64_t i) {
          return static_cast<double>(a[i]) * static_cast<double>(b[i]);
        };
        dd_sum(ctx.count, product, out.hi, out.lo);
      }
    });
  });
  return Status::Ok();
}

Status histogram(const SliceContext& ctx, Partial& out) {
  if (Status s = check_in("histogram", ctx); !s) return s;
  if (ctx.params == nullptr) return invalid("histogram", "no parameters (needs lo and hi)");
  auto spec = parse_histogram(*ctx.params);
  if (!spec) return spec.error();
  out.n = ctx.count;
  out.bins.assign(spec.value().bins + 2, 0);
  visit_dtype(ctx.in.dtype, [&](auto tag) {
    fill_histogram(ctx.in.as<decltype(tag)>(), ctx.count, spec.value(), out.bins.data());
  });
  return Status::Ok();
}

Status validate_histogram(const Params& params, DType, std::uint64_t) {
  auto spec = parse_histogram(params);
  if (!spec) return spec.error();
  return Status::Ok();
}

}  // namespace zwq::kernels
