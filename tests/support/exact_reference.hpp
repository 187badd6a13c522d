// A reference for exact sums that shares nothing with zwq's: a 2304-bit two's-complement
// integer counting units of 2^-1074 (the smallest subnormal), to which each double is added
// as its integer significand shifted into place, then rounded to nearest, ties to even, once.
// Slow and plain on purpose: tests compare fsum's bits with it.
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
    std::uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    const auto biased = static_cast<int>((bits >> 52) & 0x7ff);
    std::uint64_t significand = bits & ((std::uint64_t{1} << 52) - 1);
    if (biased != 0) significand |= std::uint64_t{1} << 52;
    if (significand == 0) return;
    // x = significand * 2^(max(biased, 1) - 1075) = significand * 2^-1074 * 2^(shift)
    const int shift = (biased == 0 ? 1 : biased) - 1;
    add_shifted(significand, shift, (bits >> 63) != 0);
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
  static constexpr int kLimbs = 36;
  using Limbs = std::array<std::uint64_t, kLimbs>;

  void add_shifted(std::uint64_t significand, int shift, bool negative) {
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
