#include "kernels/exact_sum.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

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
using V4l [[gnu::vector_size(32)]] = std::int64_t;

// |v|, lane by lane: the sign bits cleared (a compare and a blend otherwise). Through a
// reference: a function that returns a 32-byte vector has another ABI in the SSE2 build.
void set_magnitude(const V4d& v, V4d& a) {
  V4l b;
  std::memcpy(&b, &v, sizeof b);
  b &= V4l{} + std::numeric_limits<std::int64_t>::max();
  std::memcpy(&a, &b, sizeof a);
}
void set_magnitude(double v, double& a) {
  a = std::fabs(v);
}

std::uint32_t bits_of(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
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
    add_exact(out, fold(acc) + tail);
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

// Blocks whose largest magnitude is below this have a finite sigma (at most 1.5 * 2^1023).
constexpr double kSigmaLimit = 0x1p1012;

struct F64Top {
  double top = 0;     // largest |x|
  bool plain = true;  // every |x| is below kSigmaLimit: no NaN, no infinity
};

// Notes v's magnitudes in `top` (their max) and `plain` (false from a NaN, an infinity or a
// magnitude of kSigmaLimit or more), for vectors of 4 lanes and for the tails' single doubles.
void note_magnitude(const V4d& v, V4d& top, V4l& plain) {
  V4d a;
  set_magnitude(v, a);
  top = a > top ? a : top;
  plain &= a < (V4d{} + kSigmaLimit);  // false for NaN as well
}
void note_magnitude(double v, F64Top& t) {
  const double a = std::fabs(v);
  t.top = std::max(t.top, a);
  t.plain = t.plain && a < kSigmaLimit;
}
// The lanes' notes into one.
void fold_notes(const V4d& top_a, const V4d& top_b, const V4l& plain, F64Top& t) {
  for (int j = 0; j < 4; ++j) {
    t.top = std::max({t.top, top_a[j], top_b[j]});
    t.plain = t.plain && plain[j] != 0;
  }
}

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

// The exponent k of sigma's level: |x| < 2^k for every x of the level.
int level_exponent(double top) {
  int k = 0;
  std::frexp(top, &k);
  return k;
}

struct Level {
  double sum = 0;       // the high parts' sum: exact
  double rest_top = 0;  // the largest remainder
  F64Top scan;          // with kScan: the input's largest magnitude, as top_f64 gives it
};

// One level: every x of `in` split against sigma = 1.5 * 2^(k + kF64Shift) into a high part,
// summed, and a remainder, written to `rest` (which may be `in`). Exact while every |x| < 2^k.
// With kScan it also finds the input's largest magnitude, so that a block streaming in is
// scanned and split in one pass, against a k guessed before its largest is known.
template <bool kScan, typename Prefetch>
Level level_f64(const double* in, std::uint64_t len, int k, double* rest,
                const Prefetch& prefetch) {
  const double sigma = std::ldexp(1.5, k + kF64Shift);
  auto one = [sigma](auto v, auto& r, auto& sum, auto& largest) {
    const auto high = (sigma + v) - sigma;
    r = v - high;
    sum += high;
    auto a = r;
    set_magnitude(r, a);
    largest = a > largest ? a : largest;
  };
  // Written with vectors of 4 doubles: GCC would not vectorise this loop from scalar code (the
  // same ops element by element ran at 0.22 x the plain sum). Four of them a step, so that the
  // adds into the sums, each waiting for the last, make four chains (two: 0.50 x, four: 0.52 x,
  // fsum's whole loop; as named variables: in arrays GCC kept them in memory, 0.19 x).
  V4d s0 = {}, s1 = {}, s2 = {}, s3 = {}, m0 = {}, m1 = {}, m2 = {}, m3 = {};
  V4d t0 = {}, t1 = {};
  V4l plain = V4l{} - 1;
  std::uint64_t i = 0;
  for (; i + 16 <= len; i += 16) {
    if constexpr (kScan) {
      prefetch(i);
      prefetch(i + kLanes);
    }
    V4d a, b, c, d, ra, rb, rc, rd;
    std::memcpy(&a, in + i, sizeof a);  // every load before the stores: `in` may be `rest`
    std::memcpy(&b, in + i + 4, sizeof b);
    std::memcpy(&c, in + i + 8, sizeof c);
    std::memcpy(&d, in + i + 12, sizeof d);
    if constexpr (kScan) {
      note_magnitude(a, t0, plain);
      note_magnitude(b, t1, plain);
      note_magnitude(c, t0, plain);
      note_magnitude(d, t1, plain);
    }
    one(a, ra, s0, m0);
    one(b, rb, s1, m1);
    one(c, rc, s2, m2);
    one(d, rd, s3, m3);
    std::memcpy(rest + i, &ra, sizeof ra);
    std::memcpy(rest + i + 4, &rb, sizeof rb);
    std::memcpy(rest + i + 8, &rc, sizeof rc);
    std::memcpy(rest + i + 12, &rd, sizeof rd);
  }
  Level out;
  double tail = 0;
  for (; i < len; ++i) {  // apart, as in scan_f32
    if constexpr (kScan) note_magnitude(in[i], out.scan);
    one(in[i], rest[i], tail, out.rest_top);
  }
  const V4d sums = (s0 + s1) + (s2 + s3);  // exact in any order: multiples of the quantum
  double acc[kLanes] = {sums[0], sums[1], sums[2], sums[3]};
  out.sum = fold(acc) + tail;
  for (int j = 0; j < 4; ++j) out.rest_top = std::max({out.rest_top, m0[j], m1[j], m2[j], m3[j]});
  if constexpr (kScan) fold_notes(t0, t1, plain, out.scan);
  return out;
}

struct NoPrefetch {
  void operator()(std::uint64_t) const {}
};

// Splits `in` in levels until every remainder is zero. `rest` (kF64Block doubles) may be `in`.
void levels_f64(const double* in, std::uint64_t len, double top, double* rest, ExactSum& out) {
  while (top != 0) {
    const int k = level_exponent(top);
    if (k + kF64Shift < -1021) {
      // Everything left is below 2^-1032: multiples of 2^-1074 whose sum stays below 2^-1021.
      // Plain sums of them are exact.
      double tiny = 0;
      for (std::uint64_t i = 0; i < len; ++i) tiny += in[i];
      add_exact(out, tiny);
      return;
    }
    const Level l = level_f64<false>(in, len, k, rest, NoPrefetch{});
    add_exact(out, l.sum);
    top = l.rest_top;
    in = rest;
  }
}

// Each block's first level is split as it streams in, against the k of the block before (one
// binade up): blocks of similar data have similar tops. The scan of the same pass confirms it
// (every |x| below 2^k), or the block is done again from cache with its own top. A first pass
// that only found the top, then the levels from cache: 0.52 x the plain sum; fused: 0.60 x.
constexpr int kNoGuess = std::numeric_limits<int>::min();

// The next block's guess from this one's top: a binade up, if sigma stays finite and the level
// lies above the tiny one (else kNoGuess).
int guess_after(const F64Top& t) {
  if (!t.plain || t.top == 0) return kNoGuess;
  const int k = level_exponent(t.top) + 1;
  return k + kF64Shift >= -1021 && std::ldexp(1.0, k) <= kSigmaLimit ? k : kNoGuess;
}

void exact_loop(const double* x, std::uint64_t n, ExactSum& out) {
  double rest[kF64Block];
  int guess = kNoGuess;
  for (std::uint64_t start = 0; start < n; start += kF64Block) {
    const std::uint64_t len = std::min(kF64Block, n - start);
    const double* block = x + start;
    const StreamPrefetch<double> prefetch{block};
    F64Top t;
    if (guess != kNoGuess) {
      const Level l = level_f64<true>(block, len, guess, rest, prefetch);
      t = l.scan;
      if (t.plain && t.top < std::ldexp(1.0, guess)) {
        add_exact(out, l.sum);
        levels_f64(rest, len, l.rest_top, rest, out);
        if (t.top != 0) guess = guess_after(t);
        continue;
      }
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
