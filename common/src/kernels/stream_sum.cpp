#include "kernels/stream_sum.hpp"

#include "kernels/kernels.hpp"

// Why two builds: built for SSE2 the double-double loop held the sum to about what one core
// computes, not what memory delivers; the AVX2 build takes half the instructions. Same-minute
// pairs of `zwq-bench --only bw,sum` (docs/BENCHMARKS.md, e29fcc2): BW1 12.0, 11.9 -> 12.9,
// 13.0 GB/s, BW2 20.3, 20.0 -> 23.7, 22.2. Not "arch=x86-64-v3": that adds FMA, and contracting
// the additions would change the rounding.
#if defined(__x86_64__) && defined(__GNUC__)
#define ZWQ_HAVE_AVX2_BUILD 1
#endif

namespace zwq::kernels {
namespace {

// Software prefetch ahead of a streamed array, into L2 (locality 2, prefetcht1) rather than L1.
// The hardware prefetcher alone left the f32 sum at ~9 GB/s against ~12 with a prefetch into
// L1 2 KiB ahead; into L2 6 KiB ahead reads more again, with one core and with two (same-minute
// pairs of `zwq-bench --only bw,sum`, docs/BENCHMARKS.md, 28a97b4: BW1 12.8, 11.9 -> 13.8, 13.1
// GB/s, BW2 21.7, 21.5 -> 25.0, 23.4). A prefetch into L1 holds one of the core's few line fill
// buffers until its line arrives; one into L2 does not, so more lines are on their way at once.
template <typename T>
struct StreamPrefetch {
  static constexpr std::uint64_t kAheadBytes = 6144;
  const T* x;
  void operator()(std::uint64_t i) const {
    // Via an integer: the address may lie past the array, and prefetching it cannot fault.
    __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(x) +
                                                     i * sizeof(T) + kAheadBytes),
                       0, 2);
  }
};

template <typename T>
void sum_loop(const T* x, std::uint64_t n, double& hi, double& lo) {
  auto element = [x](std::uint64_t i) { return static_cast<double>(x[i]); };
  dd_sum(n, element, hi, lo, StreamPrefetch<T>{x});
}

// flatten: dd_sum and the lambdas are inlined, and so compiled for the caller's target.
[[gnu::flatten]] void sum_baseline(const float* x, std::uint64_t n, double& hi, double& lo) {
  sum_loop(x, n, hi, lo);
}
[[gnu::flatten]] void sum_baseline(const double* x, std::uint64_t n, double& hi, double& lo) {
  sum_loop(x, n, hi, lo);
}

#ifdef ZWQ_HAVE_AVX2_BUILD
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

}  // namespace zwq::kernels
