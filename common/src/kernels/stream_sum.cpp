#include "kernels/stream_sum.hpp"

#include "kernels/kernels.hpp"

// Why two builds: built for SSE2 the double-double loop held the sum to about what one core
// computes, not what memory delivers; the AVX2 build takes half the instructions. Same-minute
// pairs of `zwq-bench --only bw,sum` (docs/BENCHMARKS.md, e29fcc2): BW1 12.0, 11.9 -> 12.9,
// 13.0 GB/s, BW2 20.3, 20.0 -> 23.7, 22.2. Not "arch=x86-64-v3": that adds FMA, and contracting
// the additions would change the rounding.

namespace zwq::kernels {
namespace {

template <typename T>
void sum_loop(const T* x, std::uint64_t n, double& hi, double& lo) {
  auto element = [x](std::uint64_t i) { return static_cast<double>(x[i]); };
  dd_sum(n, element, hi, lo, StreamPrefetch<T>{x});
}

// Prefetches both arrays of a dot.
template <typename T>
struct PairPrefetch {
  StreamPrefetch<T> a, b;
  void operator()(std::uint64_t i) const {
    a(i);
    b(i);
  }
};

template <typename T>
void dot_loop(const T* a, const T* b, std::uint64_t n, double& hi, double& lo) {
  auto product = [a, b](std::uint64_t i) {
    return static_cast<double>(a[i]) * static_cast<double>(b[i]);
  };
  dd_sum(n, product, hi, lo, PairPrefetch<T>{{a}, {b}});
}

// flatten: dd_sum and the lambdas are inlined, and so compiled for the caller's target.
[[gnu::flatten]] void sum_baseline(const float* x, std::uint64_t n, double& hi, double& lo) {
  sum_loop(x, n, hi, lo);
}
[[gnu::flatten]] void sum_baseline(const double* x, std::uint64_t n, double& hi, double& lo) {
  sum_loop(x, n, hi, lo);
}

template <typename T>
[[gnu::flatten]] void dot_baseline(const T* a, const T* b, std::uint64_t n, double& hi,
                                   double& lo) {
  dot_loop(a, b, n, hi, lo);
}

#ifdef ZWQ_HAVE_AVX2_BUILD
template <typename T>
[[gnu::flatten, gnu::target("avx2")]] void dot_avx2(const T* a, const T* b, std::uint64_t n,
                                                    double& hi, double& lo) {
  dot_loop(a, b, n, hi, lo);
}
[[gnu::flatten, gnu::target("avx2")]] void sum_avx2(const float* x, std::uint64_t n, double& hi,
                                                    double& lo) {
  sum_loop(x, n, hi, lo);
}
[[gnu::flatten, gnu::target("avx2")]] void sum_avx2(const double* x, std::uint64_t n, double& hi,
                                                    double& lo) {
  sum_loop(x, n, hi, lo);
}
#endif

template <typename T>
void dispatch(const T* x, std::uint64_t n, double& hi, double& lo, Isa isa) {
#ifdef ZWQ_HAVE_AVX2_BUILD
  if (isa == Isa::kAvx2) return sum_avx2(x, n, hi, lo);
#endif
  (void)isa;
  sum_baseline(x, n, hi, lo);
}

template <typename T>
void dispatch_dot(const T* a, const T* b, std::uint64_t n, double& hi, double& lo, Isa isa) {
#ifdef ZWQ_HAVE_AVX2_BUILD
  if (isa == Isa::kAvx2) return dot_avx2(a, b, n, hi, lo);
#endif
  (void)isa;
  dot_baseline(a, b, n, hi, lo);
}

}  // namespace

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::kBaseline:
      return true;
    case Isa::kAvx2:
#ifdef ZWQ_HAVE_AVX2_BUILD
      return __builtin_cpu_supports("avx2");
#else
      return false;
#endif
  }
  return false;
}

Isa best_isa() {
  static const Isa best = isa_supported(Isa::kAvx2) ? Isa::kAvx2 : Isa::kBaseline;
  return best;
}

void stream_sum(const float* x, std::uint64_t n, double& hi, double& lo, Isa isa) {
  dispatch(x, n, hi, lo, isa);
}
void stream_sum(const double* x, std::uint64_t n, double& hi, double& lo, Isa isa) {
  dispatch(x, n, hi, lo, isa);
}

void stream_dot(const float* a, const float* b, std::uint64_t n, double& hi, double& lo, Isa isa) {
  dispatch_dot(a, b, n, hi, lo, isa);
}
void stream_dot(const double* a, const double* b, std::uint64_t n, double& hi, double& lo,
                Isa isa) {
  dispatch_dot(a, b, n, hi, lo, isa);
}

}  // namespace zwq::kernels
