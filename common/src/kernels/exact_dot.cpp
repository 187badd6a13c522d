#include "kernels/exact_dot.hpp"

#include <type_traits>
#include <vector>

#include "kernels/exact_levels.hpp"

namespace zwq::kernels {
namespace {

using namespace exact;

// The parts an element is cut into, each of at most 26 significant bits: uint8 and float32
// elements have 8 and 24; int32 and float64 split in two; int64 in 32-bit halves, each split.
template <typename T>
constexpr int kParts = std::is_same_v<T, std::int64_t>                                ? 4
                       : std::is_same_v<T, double> || std::is_same_v<T, std::int32_t> ? 2
                                                                                      : 1;

constexpr double kSplitter = 134217729.0;  // 2^27 + 1

// Dekker's split: hi + lo == v, each with at most 26 significant bits. Exact while v * kSplitter
// stays finite (|v| below about 2^997); beyond, hi is NaN, which the products' check meets.
template <typename V>
void split(const V& v, V& hi, V& lo) {
  const V c = v * kSplitter;
  hi = c - (c - v);
  lo = v - hi;
}

// ---- four elements at a time ----

// Four elements as doubles: exact for every type but int64 (parts4 splits those first).
template <typename T>
void load4(const T* p, V4d& out) {
  if constexpr (std::is_same_v<T, double>) {
    std::memcpy(&out, p, sizeof out);
  } else {
    typedef T V4 __attribute__((vector_size(4 * sizeof(T))));
    V4 v;
    std::memcpy(&v, p, sizeof v);
    out = __builtin_convertvector(v, V4d);
  }
}

// The parts of four elements.
template <typename T>
void parts4(const T* p, V4d (&part)[kParts<T>]) {
  if constexpr (std::is_same_v<T, std::int64_t>) {
    V4l v;
    std::memcpy(&v, p, sizeof v);
    const V4l high = v >> 32;  // arithmetic: the signed upper half
    const V4l low = v & 0xffffffff;
    split(__builtin_convertvector(high, V4d) * 0x1p32, part[0], part[1]);
    split(__builtin_convertvector(low, V4d), part[2], part[3]);
  } else if constexpr (kParts<T> == 2) {
    V4d v;
    load4(p, v);
    split(v, part[0], part[1]);
  } else {
    load4(p, part[0]);
  }
}

// ---- element by element ----

struct Parts {
  double part[4] = {};
  int exponent = 0;  // the element is the parts' sum times 2^exponent
  bool finite = true;
};

// One element's parts; a float64 element is first scaled into [0.5, 1).
template <typename T>
Parts parts_of(T x) {
  Parts p;
  if constexpr (std::is_same_v<T, std::int64_t>) {
    split(static_cast<double>(x >> 32) * 0x1p32, p.part[0], p.part[1]);
    split(static_cast<double>(static_cast<std::uint32_t>(x)), p.part[2], p.part[3]);
  } else if constexpr (std::is_same_v<T, double>) {
    p.finite = std::isfinite(x);
    if (p.finite) split(std::frexp(x, &p.exponent), p.part[0], p.part[1]);
  } else if constexpr (std::is_same_v<T, std::int32_t>) {
    split(static_cast<double>(x), p.part[0], p.part[1]);
  } else {
    p.part[0] = static_cast<double>(x);
    p.finite = std::isfinite(p.part[0]);
  }
  return p;
}

// Each element's product, exact, into the expansion: its parts' products are first summed
// exactly unscaled (an expansion of their own, whose largest term is the product rounded), and
// only then scaled back. Scaled one by one, a part's product could pass 2^1024 where the
// element's does not: DBL_MAX scaled to [0.5, 1) is 1 - 2^-53, which splits into 1 and -2^-53.
// Exact, but for a product beyond the largest double (its IEEE infinity) and the bits of one
// below 2^-1074 (each term rounded to a multiple of it).
template <typename A, typename B>
void slow_products(const A* a, const B* b, std::uint64_t len, ExactSum& out) {
  thread_local std::vector<double> product;  // its capacity is kept
  for (std::uint64_t i = 0; i < len; ++i) {
    const Parts pa = parts_of(a[i]), pb = parts_of(b[i]);
    if (!pa.finite || !pb.finite) {
      add_special(out, static_cast<double>(a[i]) * static_cast<double>(b[i]));
      continue;
    }
    product.clear();
    for (int x = 0; x < kParts<A>; ++x) {
      for (int y = 0; y < kParts<B>; ++y) {
        const double q = pa.part[x] * pb.part[y];  // at most 52 significant bits: exact
        // Below 2^127 each (int64 parts, unscaled): their sum cannot overflow.
        if (q != 0) expansion_add(product, q);
      }
    }
    const int e = pa.exponent + pb.exponent;
    if (product.empty()) continue;
    const double top = std::ldexp(product.back(), e);
    if (std::isinf(top)) {
      add_special(out, top);  // beyond the largest double, whatever the lower terms
      continue;
    }
    for (double term : product) add_exact(out, std::ldexp(term, e));  // smallest first
  }
}

// ---- the loop ----

// The products of two one-part types (float32, uint8) as a level reads them: made as they are
// read, so that a block is multiplied and split in one pass.
template <typename A, typename B>
struct Products {
  const A* a;
  const B* b;
  void load(std::uint64_t i, V4d& v) const {
    V4d x, y;
    load4(a + i, x);
    load4(b + i, y);
    v = x * y;
  }
  double at(std::uint64_t i) const { return static_cast<double>(a[i]) * static_cast<double>(b[i]); }
};

template <typename A, typename B>
struct PairPrefetch {
  StreamPrefetch<A> a;
  StreamPrefetch<B> b;
  void operator()(std::uint64_t i) const {
    a(i);
    b(i);
  }
};

// A block's products (kF64Block of them) are written out and summed in levels; `levels` is
// levels_f64 built for the caller's ISA. The product of two parts is exact while it is a
// finite double (a subnormal one included: its lowest bit is that of the elements' product);
// a block with a product that is not finite, or of kSigmaLimit or more, goes element by
// element.
template <typename A, typename B, typename Levels>
void dot_loop(const A* a, const B* b, std::uint64_t n, ExactSum& out, Levels levels) {
  constexpr int kTerms = kParts<A> * kParts<B>;
  constexpr std::uint64_t kElements = kF64Block / kTerms;
  static_assert(kElements % 4 == 0);
  double products[kF64Block], rest[kF64Block];
  const std::uint64_t whole = n - n % 4;
  int guess = kNoGuess;
  for (std::uint64_t start = 0; start < whole; start += kElements) {
    const std::uint64_t len = std::min(kElements, whole - start);
    const A* block_a = a + start;
    const B* block_b = b + start;
    const StreamPrefetch<A> prefetch_a{block_a};
    const StreamPrefetch<B> prefetch_b{block_b};
    if constexpr (kTerms == 1) {
      // One product an element: split as it is made, against the block before's guess, as
      // fsum splits float64 (0.52 x dot with the products written out first; fused: 0.60 x).
      F64Top scan;
      if (guess != kNoGuess &&
          split_guessed(Products<A, B>{block_a, block_b}, len, guess, rest,
                        PairPrefetch<A, B>{prefetch_a, prefetch_b}, levels, out, scan)) {
        continue;
      }
    }
    V4d top_a = {}, top_b = {};
    V4l plain = V4l{} - 1;
    for (std::uint64_t i = 0; i < len; i += 4) {
      prefetch_a(i);
      prefetch_b(i);
      V4d pa[kParts<A>], pb[kParts<B>];
      parts4(block_a + i, pa);
      parts4(block_b + i, pb);
      double* to = products + i * kTerms;
      for (int x = 0; x < kParts<A>; ++x) {
        for (int y = 0; y < kParts<B>; ++y) {
          const V4d q = pa[x] * pb[y];
          std::memcpy(to, &q, sizeof q);
          to += 4;
          note_magnitude(q, (x + y) % 2 == 0 ? top_a : top_b, plain);
        }
      }
    }
    F64Top t;
    fold_notes(top_a, top_b, plain, t);
    if (t.plain) {
      levels(products, len * kTerms, t.top, rest, out);
    } else {
      slow_products(block_a, block_b, len, out);
    }
    guess = guess_after(t);
  }
  slow_products(a + whole, b + whole, n - whole, out);
}

// The levels are built once per ISA, not inlined into each of the 25 pairs' loops.
[[gnu::noinline, gnu::flatten]] void levels_baseline(const double* in, std::uint64_t len,
                                                     double top, double* rest, ExactSum& out) {
  levels_f64(in, len, top, rest, out);
}
template <typename A, typename B>
[[gnu::flatten]] void run_baseline(const A* a, const B* b, std::uint64_t n, ExactSum& out) {
  dot_loop(a, b, n, out, levels_baseline);
}
#ifdef ZWQ_HAVE_AVX2_BUILD
[[gnu::noinline, gnu::flatten, gnu::target("avx2")]] void levels_avx2(const double* in,
                                                                      std::uint64_t len, double top,
                                                                      double* rest, ExactSum& out) {
  levels_f64(in, len, top, rest, out);
}
template <typename A, typename B>
[[gnu::flatten, gnu::target("avx2")]] void run_avx2(const A* a, const B* b, std::uint64_t n,
                                                    ExactSum& out) {
  dot_loop(a, b, n, out, levels_avx2);
}
#endif

}  // namespace

void exact_dot(const void* a, DType a_type, const void* b, DType b_type, std::uint64_t n,
               ExactSum& acc, Isa isa) {
  visit_dtype(a_type, [&](auto tag_a) {
    visit_dtype(b_type, [&](auto tag_b) {
      const auto* x = static_cast<const decltype(tag_a)*>(a);
      const auto* y = static_cast<const decltype(tag_b)*>(b);
#ifdef ZWQ_HAVE_AVX2_BUILD
      if (isa == Isa::kAvx2) return run_avx2(x, y, n, acc);
#endif
      (void)isa;
      run_baseline(x, y, n, acc);
    });
  });
}

}  // namespace zwq::kernels
