#include "kernels/exact_sum.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/kernels.hpp"
#include "zwq/partial.hpp"

namespace zwq::kernels {
namespace {

constexpr std::uint32_t kF32Abs = 0x7fffffffu;
constexpr std::uint32_t kF32Specials = 0x7f800000u;  // |bits| from here up: inf and NaN
// Binades per float32 level: 4096 elements whose exponents lie within [e - 17, e] are
// multiples of 2^(e-17-23) below 2^(e+1+12) in magnitude, so every partial sum of them is an
// integer below 2^53 times that quantum: exact in a double.
constexpr std::uint32_t kF32LevelBinades = 17;
static_assert(kBlock == 4096, "the float32 levels are sized for blocks of 4096");
// float64 blocks are smaller: the remainders of a block are kept on the stack, in L1.
constexpr std::uint64_t kF64Block = 2048;
// Rump's extraction against sigma = 1.5 * 2^(k + kF64Shift) for |x| < 2^k: the high parts are
// multiples of 2^(k + kF64Shift - 52) below 2^k, and 2048 of them sum below 2^(k+11): exact.
// Each remainder is below 2^(k + kF64Shift - 53), 42 binades down.
constexpr int kF64Shift = 11;
static_assert(kF64Block <= (std::uint64_t{1} << kF64Shift), "float64 high parts must sum exactly");

using V4d [[gnu::vector_size(32)]] = double;

std::uint32_t bits_of(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}
std::uint64_t bits_of(double d) {
  std::uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

double fold(double (&acc)[kLanes]) {
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int j = 0; j < width; ++j) acc[j] += acc[j + width];
  }
  return acc[0];
}

void add_exact(ExactSum& acc, double x) {
  if (x == 0 || acc.has_special) return;
  double overflow = 0;
  if (!expansion_add(acc.expansion, x, &overflow)) {
    acc.has_special = true;
    acc.special = overflow;
  }
}

void add_special(ExactSum& acc, double x) {
  acc.special = acc.has_special ? acc.special + x : x;
  acc.has_special = true;
}

// ---- float32 ----

struct F32Scan {
  double total = 0;
  std::uint32_t top = 0;  // largest |bits|
  std::uint32_t low = 0;  // smallest nonzero |bits|; 0 if all are zero
};

// The block's lane sum and its range, in one pass as it streams in.
template <typename Prefetch>
F32Scan scan_f32(const float* x, std::uint64_t len, const Prefetch& prefetch) {
  double acc[kLanes] = {};
  std::uint32_t top[kLanes] = {};
  std::uint32_t low[kLanes];  // smallest |bits| - 1: a zero wraps to the largest
  for (int j = 0; j < kLanes; ++j) low[j] = ~std::uint32_t{0};
  std::uint64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
    prefetch(i);
    for (int j = 0; j < kLanes; ++j) {
      const float f = x[i + j];
      const std::uint32_t b = bits_of(f) & kF32Abs;
      top[j] = std::max(top[j], b);
      low[j] = std::min(low[j], b - 1);
      acc[j] += static_cast<double>(f);
    }
  }
  // The lanes are read only here, and the tail goes into scalars of its own: a lane indexed
  // by a variable or touched apart from the others is kept in memory, or element by element,
  // through the main loop too (measured: 5-6 GB/s against 13).
  F32Scan s;
  std::uint32_t lowest = ~std::uint32_t{0};
  for (int j = 0; j < kLanes; ++j) {
    s.top = std::max(s.top, top[j]);
    lowest = std::min(lowest, low[j]);
  }
  double tail = 0;
  for (; i < len; ++i) {
    const std::uint32_t b = bits_of(x[i]) & kF32Abs;
    s.top = std::max(s.top, b);
    lowest = std::min(lowest, b - 1);
    tail += static_cast<double>(x[i]);
  }
  s.low = lowest + 1;
  s.total = fold(acc) + tail;  // still a sum of the block's elements: exact on the same terms
  return s;
}

// The block again, from cache, in levels from the top: the elements with |bits| in
// [floor, upper), where floor is kF32LevelBinades binades under the level's largest.
void levels_f32(const float* x, std::uint64_t len, std::uint32_t top, ExactSum& out) {
  std::uint32_t upper = ~std::uint32_t{0};
  while (top != 0) {
    const std::uint32_t e = top >> 23;
    const std::uint32_t floor = e > kF32LevelBinades ? (e - kF32LevelBinades) << 23 : 0;
    double acc[kLanes] = {};
    std::uint32_t next[kLanes] = {};
    double tail = 0;
    std::uint32_t tail_next = 0;
    auto one = [floor, upper](float f, double& sum, std::uint32_t& below) {
      const std::uint32_t b = bits_of(f) & kF32Abs;
      const bool in = b >= floor && b < upper;
      sum += in ? static_cast<double>(f) : 0.0;
      below = std::max(below, b < floor ? b : 0);
    };
    std::uint64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) one(x[i + j], acc[j], next[j]);
    }
    for (; i < len; ++i) one(x[i], tail, tail_next);  // apart, as in scan_f32
    add_exact(out, fold(acc) + tail);
    upper = floor;
    top = tail_next;
    for (int j = 0; j < kLanes; ++j) top = std::max(top, next[j]);
  }
}

void exact_loop(const float* x, std::uint64_t n, ExactSum& out) {
  for (std::uint64_t start = 0; start < n; start += kBlock) {
    const std::uint64_t len = std::min(kBlock, n - start);
    const float* block = x + start;
    const F32Scan s = scan_f32(block, len, StreamPrefetch<float>{block});
    if (s.top >= kF32Specials) {
      add_special(out, s.total);  // an inf or NaN among finite floats: their IEEE sum
    } else if (s.low == 0 || (s.top >> 23) - (s.low >> 23) <= kF32LevelBinades) {
      add_exact(out, s.total);
    } else {
      levels_f32(block, len, s.top, out);
    }
  }
}

// ---- float64 ----

template <typename Prefetch>
std::uint64_t top_f64(const double* x, std::uint64_t len, const Prefetch& prefetch) {
  // Signed compares: |bits| < 2^63, and AVX2 has a signed 64-bit compare, not an unsigned one.
  std::int64_t top[kLanes] = {};
  auto one = [](double v, std::int64_t& t) {
    const auto b = static_cast<std::int64_t>(bits_of(v) & ~(std::uint64_t{1} << 63));
    t = b > t ? b : t;
  };
  std::uint64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
    prefetch(i);
    for (int j = 0; j < kLanes; ++j) one(x[i + j], top[j]);
  }
  std::int64_t tail = 0;
  for (; i < len; ++i) one(x[i], tail);
  for (int j = 0; j < kLanes; ++j) tail = std::max(tail, top[j]);
  return static_cast<std::uint64_t>(tail);
}

// Element by element into the expansion: blocks with a NaN, an infinity or magnitudes so large
// that sigma would overflow (above 2^1011).
void slow_f64(const double* x, std::uint64_t len, ExactSum& out) {
  for (std::uint64_t i = 0; i < len; ++i) {
    if (std::isfinite(x[i])) {
      add_exact(out, x[i]);
    } else {
      add_special(out, x[i]);
    }
  }
}

void levels_f64(const double* x, std::uint64_t len, double top, ExactSum& out) {
  double rest[kF64Block];
  const double* in = x;
  while (top != 0) {
    int k = 0;
    std::frexp(top, &k);  // top < 2^k
    double acc[kLanes] = {};
    if (k + kF64Shift < -1021) {
      // Everything left is below 2^-1032: multiples of 2^-1074 whose sum stays below 2^-1021.
      // Plain sums of them are exact.
      double tiny = 0;
      for (std::uint64_t i = 0; i < len; ++i) tiny += in[i];
      add_exact(out, tiny);
      return;
    }
    const double sigma = std::ldexp(1.5, k + kF64Shift);
    auto one = [sigma](auto v, auto& r, auto& sum, auto& largest) {
      const auto high = (sigma + v) - sigma;
      r = v - high;
      sum += high;
      const auto a = r < 0 ? -r : r;
      largest = a > largest ? a : largest;
    };
    // Written with vectors of 4 doubles (two make the 8 lanes): GCC would not vectorise this
    // loop from scalar code (the same ops element by element ran at 0.22 x the plain sum).
    V4d sum_lo = {}, sum_hi = {}, next_lo = {}, next_hi = {};
    std::uint64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      V4d a, b, ra, rb;
      std::memcpy(&a, in + i, sizeof a);  // both loads before the stores: `in` may be `rest`
      std::memcpy(&b, in + i + 4, sizeof b);
      one(a, ra, sum_lo, next_lo);
      one(b, rb, sum_hi, next_hi);
      std::memcpy(rest + i, &ra, sizeof ra);
      std::memcpy(rest + i + 4, &rb, sizeof rb);
    }
    double tail = 0, top_left = 0;
    for (; i < len; ++i) one(in[i], rest[i], tail, top_left);  // apart, as in scan_f32
    for (int j = 0; j < 4; ++j) {
      acc[j] = sum_lo[j];
      acc[j + 4] = sum_hi[j];
      top_left = std::max({top_left, next_lo[j], next_hi[j]});
    }
    add_exact(out, fold(acc) + tail);
    top = top_left;
    in = rest;
  }
}

void exact_loop(const double* x, std::uint64_t n, ExactSum& out) {
  constexpr std::uint64_t kSigmaLimit = std::uint64_t{2035} << 52;  // 2^1012: sigma stays finite
  for (std::uint64_t start = 0; start < n; start += kF64Block) {
    const std::uint64_t len = std::min(kF64Block, n - start);
    const double* block = x + start;
    const std::uint64_t top = top_f64(block, len, StreamPrefetch<double>{block});
    if (top >= kSigmaLimit) {
      slow_f64(block, len, out);
    } else {
      double t;
      std::memcpy(&t, &top, sizeof t);
      levels_f64(block, len, t, out);
    }
  }
}

// flatten: the loops and lambdas are inlined, and so compiled for the caller's target.
template <typename T>
[[gnu::flatten]] void run_baseline(const T* x, std::uint64_t n, ExactSum& out) {
  exact_loop(x, n, out);
}
#ifdef ZWQ_HAVE_AVX2_BUILD
template <typename T>
[[gnu::flatten, gnu::target("avx2")]] void run_avx2(const T* x, std::uint64_t n, ExactSum& out) {
  exact_loop(x, n, out);
}
#endif

template <typename T>
void dispatch(const T* x, std::uint64_t n, ExactSum& out, Isa isa) {
#ifdef ZWQ_HAVE_AVX2_BUILD
  if (isa == Isa::kAvx2) return run_avx2(x, n, out);
#endif
  (void)isa;
  run_baseline(x, n, out);
}

}  // namespace

void exact_sum(const float* x, std::uint64_t n, ExactSum& acc, Isa isa) {
  dispatch(x, n, acc, isa);
}
void exact_sum(const double* x, std::uint64_t n, ExactSum& acc, Isa isa) {
  dispatch(x, n, acc, isa);
}

}  // namespace zwq::kernels
