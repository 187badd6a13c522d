// The float64 levels behind fsum and fdot: blocks of doubles summed exactly by Rump's
// extraction, and the vector helpers they share. Private to exact_sum.cpp and exact_dot.cpp;
// inline, so that each file's AVX2 build inlines its own copy (gnu::flatten).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/exact_sum.hpp"
#include "kernels/kernels.hpp"
#include "zwq/partial.hpp"

namespace zwq::kernels::exact {

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
inline void set_magnitude(const V4d& v, V4d& a) {
  V4l b;
  std::memcpy(&b, &v, sizeof b);
  b &= V4l{} + std::numeric_limits<std::int64_t>::max();
  std::memcpy(&a, &b, sizeof a);
}
inline void set_magnitude(double v, double& a) {
  a = std::fabs(v);
}

inline void add_exact(ExactSum& acc, double x) {
  if (x == 0 || acc.has_special) return;
  double overflow = 0;
  if (!expansion_add(acc.expansion, x, &overflow)) {
    acc.has_special = true;
    acc.special = overflow;
  }
}

inline void add_special(ExactSum& acc, double x) {
  acc.special = acc.has_special ? acc.special + x : x;
  acc.has_special = true;
}

// Blocks whose largest magnitude is below this have a finite sigma (at most 1.5 * 2^1023).
constexpr double kSigmaLimit = 0x1p1012;

struct F64Top {
  double top = 0;     // largest |x|
  bool plain = true;  // every |x| is below kSigmaLimit: no NaN, no infinity
};

// Notes v's magnitudes in `top` (their max) and `plain` (false from a NaN, an infinity or a
// magnitude of kSigmaLimit or more), for vectors of 4 lanes and for the tails' single doubles.
inline void note_magnitude(const V4d& v, V4d& top, V4l& plain) {
  V4d a;
  set_magnitude(v, a);
  top = a > top ? a : top;
  plain &= a < (V4d{} + kSigmaLimit);  // false for NaN as well
}
inline void note_magnitude(double v, F64Top& t) {
  const double a = std::fabs(v);
  t.top = std::max(t.top, a);
  t.plain = t.plain && a < kSigmaLimit;
}
// The lanes' notes into one.
inline void fold_notes(const V4d& top_a, const V4d& top_b, const V4l& plain, F64Top& t) {
  for (int j = 0; j < 4; ++j) {
    t.top = std::max({t.top, top_a[j], top_b[j]});
    t.plain = t.plain && plain[j] != 0;
  }
}

// The exponent k of sigma's level: |x| < 2^k for every x of the level.
inline int level_exponent(double top) {
  int k = 0;
  std::frexp(top, &k);
  return k;
}

struct Level {
  double sum = 0;       // the high parts' sum: exact
  double rest_top = 0;  // the largest remainder
  F64Top scan;          // with kScan: the input's largest magnitude, as top_f64 gives it
};

// The doubles a level reads: from an array (fsum's blocks, a block's remainders), or made as
// they are read (fdot's products). load(i, v): elements i..i+3; at(i): element i.
struct Doubles {
  const double* in;
  void load(std::uint64_t i, V4d& v) const { std::memcpy(&v, in + i, sizeof v); }
  double at(std::uint64_t i) const { return in[i]; }
};

// One level: every x of `src` split against sigma = 1.5 * 2^(k + kF64Shift) into a high part,
// summed, and a remainder, written to `rest` (which may be the array `src` reads). Exact while
// every |x| < 2^k. With kScan it also finds the input's largest magnitude, so that a block
// streaming in is scanned and split in one pass, against a k guessed before its largest is
// known.
template <bool kScan, typename Source, typename Prefetch>
inline Level level_of(const Source& src, std::uint64_t len, int k, double* rest,
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
    src.load(i, a);  // every load before the stores: `src` may read `rest`
    src.load(i + 4, b);
    src.load(i + 8, c);
    src.load(i + 12, d);
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
    const double x = src.at(i);
    if constexpr (kScan) note_magnitude(x, out.scan);
    one(x, rest[i], tail, out.rest_top);
  }
  const V4d sums = (s0 + s1) + (s2 + s3);  // exact in any order: multiples of the quantum
  double acc[kLanes] = {sums[0], sums[1], sums[2], sums[3]};
  out.sum = fold_lanes(acc) + tail;
  for (int j = 0; j < 4; ++j) out.rest_top = std::max({out.rest_top, m0[j], m1[j], m2[j], m3[j]});
  if constexpr (kScan) fold_notes(t0, t1, plain, out.scan);
  return out;
}

template <bool kScan, typename Prefetch>
inline Level level_f64(const double* in, std::uint64_t len, int k, double* rest,
                       const Prefetch& prefetch) {
  return level_of<kScan>(Doubles{in}, len, k, rest, prefetch);
}

// Splits `in` in levels until every remainder is zero. `rest` (kF64Block doubles) may be `in`.
inline void levels_f64(const double* in, std::uint64_t len, double top, double* rest,
                       ExactSum& out) {
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

// A block's first level can be split as it streams in, against the k of the block before (one
// binade up): blocks of similar data have similar tops. The scan of the same pass confirms it
// (every |x| below 2^k), or the block is done again from cache with its own top.
constexpr int kNoGuess = std::numeric_limits<int>::min();

// The next block's guess from this one's top: a binade up, if sigma stays finite and the level
// lies above the tiny one (else kNoGuess).
inline int guess_after(const F64Top& t) {
  if (!t.plain || t.top == 0) return kNoGuess;
  const int k = level_exponent(t.top) + 1;
  return k + kF64Shift >= -1021 && std::ldexp(1.0, k) <= kSigmaLimit ? k : kNoGuess;
}

// Splits a block streaming in from `src` against `guess`. When the same pass's scan confirms
// the guess (every |x| below 2^guess, nothing special), the block is summed into `out`, its
// further levels by `levels` (levels_f64 as the caller builds it), the guess moves on to this
// block's, and the answer is true. Else false: `scan` says what the block holds, and the caller
// does it again from cache.
template <typename Source, typename Prefetch, typename Levels>
inline bool split_guessed(const Source& src, std::uint64_t len, int& guess, double* rest,
                          const Prefetch& prefetch, const Levels& levels, ExactSum& out,
                          F64Top& scan) {
  const Level l = level_of<true>(src, len, guess, rest, prefetch);
  scan = l.scan;
  if (!scan.plain || scan.top >= std::ldexp(1.0, guess)) return false;
  add_exact(out, l.sum);
  levels(rest, len, l.rest_top, rest, out);
  if (scan.top != 0) guess = guess_after(scan);  // all zeros: the guess stands
  return true;
}

}  // namespace zwq::kernels::exact
