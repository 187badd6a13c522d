#include "kernels/exact_sum.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/exact_levels.hpp"
#include "kernels/kernels.hpp"
#include "zwq/partial.hpp"

namespace zwq::kernels {
namespace {

using namespace exact;

constexpr std::uint32_t kF32Abs = 0x7fffffffu;
constexpr std::uint32_t kF32Specials = 0x7f800000u;  // |bits| from here up: inf and NaN
// Binades per float32 level: 4096 elements whose exponents lie within [e - 17, e] are
// multiples of 2^(e-17-23) below 2^(e+1+12) in magnitude, so every partial sum of them is an
// integer below 2^53 times that quantum: exact in a double.
constexpr std::uint32_t kF32LevelBinades = 17;
static_assert(kBlock == 4096, "the float32 levels are sized for blocks of 4096");
std::uint32_t bits_of(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
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
  s.total = fold_lanes(acc) + tail;  // still a sum of the block's elements: exact on the same terms
  return s;
}

using V4f [[gnu::vector_size(16)]] = float;
using V4i [[gnu::vector_size(16)]] = std::int32_t;

// The block again, from cache, in levels from the top: the elements with |bits| in
// [floor, ceiling], where floor is kF32LevelBinades binades under the level's largest. The
// |bits| are compared as signed integers (their sign bit is clear): SSE2 and AVX2 compare no
// other way. Written with vectors: GCC left the same ops element by element scalar (normal
// float32 values, whose blocks now and then need levels: 0.70 x the plain sum's GB/s, fsum's
// whole loop; with vectors 0.77 x).
void levels_f32(const float* x, std::uint64_t len, std::uint32_t top, ExactSum& out) {
  std::int32_t ceiling = std::numeric_limits<std::int32_t>::max();
  while (top != 0) {
    const std::uint32_t e = top >> 23;
    const auto floor =
        static_cast<std::int32_t>(e > kF32LevelBinades ? (e - kF32LevelBinades) << 23 : 0);
    const V4i floor_v = V4i{} + floor, ceiling_v = V4i{} + ceiling;
    auto one = [&floor_v, &ceiling_v](const float* at, V4d& sum, V4i& below) {
      V4f f;
      V4i b;
      std::memcpy(&f, at, sizeof f);
      std::memcpy(&b, at, sizeof b);
      b &= V4i{} + static_cast<std::int32_t>(kF32Abs);
      const V4i in = (b >= floor_v) & (b <= ceiling_v);
      const V4f kept = in ? f : V4f{};
      sum += __builtin_convertvector(kept, V4d);
      const V4i under = b < floor_v ? b : V4i{};
      below = under > below ? under : below;
    };
    V4d s0 = {}, s1 = {};
    V4i below0 = {}, below1 = {};
    std::uint64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      one(x + i, s0, below0);
      one(x + i + 4, s1, below1);
    }
    double tail = 0;  // apart, as in scan_f32
    std::int32_t next = 0;
    for (; i < len; ++i) {
      const auto b = static_cast<std::int32_t>(bits_of(x[i]) & kF32Abs);
      tail += b >= floor && b <= ceiling ? static_cast<double>(x[i]) : 0.0;
      next = std::max(next, b < floor ? b : 0);
    }
    double acc[kLanes] = {};
    for (int j = 0; j < 4; ++j) {
      acc[j] = s0[j];
      acc[j + 4] = s1[j];
      next = std::max({next, below0[j], below1[j]});
    }
    add_exact(out, fold_lanes(acc) + tail);
    ceiling = floor - 1;
    top = static_cast<std::uint32_t>(next);
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

// The block's largest magnitude, as it streams in. Written with vectors: the same scalar loop
// was left scalar by GCC (integer max of the bits: 0.39 x the plain sum's GB/s, fsum's all).
template <typename Prefetch>
F64Top top_f64(const double* x, std::uint64_t len, const Prefetch& prefetch) {
  V4d top_a = {}, top_b = {};
  V4l plain = V4l{} - 1;  // all ones while every lane is plain
  std::uint64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
    prefetch(i);
    V4d a, b;
    std::memcpy(&a, x + i, sizeof a);
    std::memcpy(&b, x + i + 4, sizeof b);
    note_magnitude(a, top_a, plain);
    note_magnitude(b, top_b, plain);
  }
  F64Top t;
  fold_notes(top_a, top_b, plain, t);
  for (; i < len; ++i) note_magnitude(x[i], t);  // apart, as in scan_f32
  return t;
}

// Element by element into the expansion: blocks with a NaN, an infinity or magnitudes so large
// that sigma would overflow (kSigmaLimit and up).
void slow_f64(const double* x, std::uint64_t len, ExactSum& out) {
  for (std::uint64_t i = 0; i < len; ++i) {
    if (std::isfinite(x[i])) {
      add_exact(out, x[i]);
    } else {
      add_special(out, x[i]);
    }
  }
}

// Each block's first level is split as it streams in, against the guess from the block before
// (exact_levels.hpp). A first pass that only found the top, then the levels from cache: 0.52 x
// the plain sum; fused: 0.60 x.
void exact_loop(const double* x, std::uint64_t n, ExactSum& out) {
  double rest[kF64Block];
  int guess = kNoGuess;
  for (std::uint64_t start = 0; start < n; start += kF64Block) {
    const std::uint64_t len = std::min(kF64Block, n - start);
    const double* block = x + start;
    const StreamPrefetch<double> prefetch{block};
    F64Top t;
    if (guess != kNoGuess) {
      auto levels = [](const double* in, std::uint64_t n, double top, double* r, ExactSum& o) {
        levels_f64(in, n, top, r, o);
      };
      if (split_guessed(Doubles{block}, len, guess, rest, prefetch, levels, out, t)) continue;
    } else {
      t = top_f64(block, len, prefetch);
    }
    if (t.plain) {
      levels_f64(block, len, t.top, rest, out);
    } else {
      slow_f64(block, len, out);
    }
    guess = guess_after(t);
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
