// A reference for exact sums that shares nothing with zwq's: a 2304-bit two's-complement
// integer counting units of 2^-1074 (the smallest subnormal), to which each double is added
// as its integer significand shifted into place (a product as the product of two), then rounded
// to nearest, ties to even, once. Slow and plain on purpose: tests compare the bits of fsum and
// fdot with it.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace zwq::test {

class ExactReference {
 public:
  void add(double x) {
    const Term t = term_of(x);
    if (t.magnitude != 0) add_shifted(t.magnitude, t.shift, t.negative);
  }

  // Adds a * b exactly, for doubles (and what converts to them exactly) and int64. False, and
  // nothing added, when the product has bits below 2^-1074 or lies beyond what the integer holds.
  template <typename A, typename B>
  bool add_product(A a, B b) {
    const Term x = term_of(a), y = term_of(b);
    if (x.magnitude == 0 || y.magnitude == 0) return true;
    U128 p = static_cast<U128>(x.magnitude) * y.magnitude;
    // x = mx * 2^(sx - 1074), y likewise: x * y = p * 2^(sx + sy - 1074) * 2^-1074.
    int shift = x.shift + y.shift - 1074;
    for (; shift < 0 && (p & 1) == 0; ++shift) p >>= 1;  // trailing zeros
    if (shift < 0 || shift + 128 > kLimbs * 64 - 2) return false;
    const bool negative = x.negative != y.negative;
    add_shifted(static_cast<std::uint64_t>(p), shift, negative);
    add_shifted(static_cast<std::uint64_t>(p >> 64), shift + 64, negative);
    return true;
  }

  // The exact sum rounded to the nearest double, ties to even (+-inf beyond the largest).
  double value() const {
    Limbs v = limbs_;
    const bool negative = (v[kLimbs - 1] >> 63) != 0;
    if (negative) negate(v);
    int top = -1;
    for (int i = kLimbs - 1; i >= 0 && top < 0; --i) {
      if (v[i] != 0) top = i * 64 + 63 - __builtin_clzll(v[i]);
    }
    if (top < 0) return 0.0;
    double out = 0;
    if (top < 53) {
      out = std::ldexp(static_cast<double>(bits(v, 0, top + 1)), -1074);
    } else {
      std::uint64_t mantissa = bits(v, top - 52, 53);
      const bool half = bit(v, top - 53);
      bool sticky = false;
      for (int b = 0; b < top - 53 && !sticky; ++b) sticky = bit(v, b);
      int exponent = top - 52 - 1074;
      if (half && (sticky || (mantissa & 1) != 0)) {
        if (++mantissa == (std::uint64_t{1} << 53)) {
          mantissa >>= 1;
          ++exponent;
        }
      }
      out = std::ldexp(static_cast<double>(mantissa), exponent);
    }
    return negative ? -out : out;
  }

 private:
  // -Wpedantic rejects the bare name; __extension__ says we mean it (GCC and Clang).
  __extension__ typedef unsigned __int128 U128;
  static constexpr int kLimbs = 36;
  using Limbs = std::array<std::uint64_t, kLimbs>;

  // |x| = magnitude * 2^(shift - 1074).
  struct Term {
    std::uint64_t magnitude = 0;
    int shift = 0;
    bool negative = false;
  };
  static Term term_of(double x) {
    std::uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    const auto biased = static_cast<int>((bits >> 52) & 0x7ff);
    Term t;
    t.magnitude = bits & ((std::uint64_t{1} << 52) - 1);
    if (biased != 0) t.magnitude |= std::uint64_t{1} << 52;
    t.shift = (biased == 0 ? 1 : biased) - 1;
    t.negative = (bits >> 63) != 0;
    return t;
  }
  static Term term_of(std::int64_t x) {
    Term t;
    t.negative = x < 0;
    t.magnitude = t.negative ? 0 - static_cast<std::uint64_t>(x) : static_cast<std::uint64_t>(x);
    t.shift = 1074;
    return t;
  }
  static Term term_of(float x) { return term_of(static_cast<double>(x)); }
  static Term term_of(std::int32_t x) { return term_of(static_cast<double>(x)); }
  static Term term_of(std::uint8_t x) { return term_of(static_cast<double>(x)); }

  void add_shifted(std::uint64_t significand, int shift, bool negative) {
    if (significand == 0) return;
    Limbs term{};
    const int limb = shift / 64;
    const int offset = shift % 64;
    term[limb] = significand << offset;
    if (offset != 0 && limb + 1 < kLimbs) term[limb + 1] = significand >> (64 - offset);
    if (negative) negate(term);
    unsigned carry = 0;
    for (int i = 0; i < kLimbs; ++i) {
      const std::uint64_t a = limbs_[i];
      const std::uint64_t s = a + term[i];
      const unsigned c1 = s < a;
      const std::uint64_t t = s + carry;
      const unsigned c2 = t < s;
      limbs_[i] = t;
      carry = c1 + c2;
    }
  }
  static void negate(Limbs& v) {
    unsigned carry = 1;
    for (auto& limb : v) {
      limb = ~limb + carry;
      carry = carry != 0 && limb == 0;
    }
  }
  static bool bit(const Limbs& v, int b) { return ((v[b / 64] >> (b % 64)) & 1) != 0; }
  static std::uint64_t bits(const Limbs& v, int from, int count) {
    std::uint64_t out = 0;
    for (int b = count - 1; b >= 0; --b) out = (out << 1) | (bit(v, from + b) ? 1 : 0);
    return out;
  }

  Limbs limbs_{};
};

}  // namespace zwq::test
