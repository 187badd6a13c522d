#include "kernels/stream_sum.hpp"

#include "kernels/kernels.hpp"

// Why two builds: on the 2-core bench machine the SSE2 loop summed f32 data already in cache at
// ~13 GB/s per core, below what memory delivers to two cores (~26 GB/s read); built for AVX2
// the same loop sums cached data at ~45 GB/s, so the sum is held by memory alone. Not
// "arch=x86-64-v3": that adds FMA, and contracting the additions would change the rounding.
#if defined(__x86_64__) && defined(__GNUC__)
#define ZWQ_HAVE_AVX2_BUILD 1
#endif

namespace zwq::kernels {
namespace {

// Software prefetch ahead of a streamed array, into L2 (locality 2, prefetcht1) rather than L1.
// The hardware prefetcher alone left the f32 sum at ~9 GB/s against ~12 with a prefetch into
// L1 2 KiB ahead; into L2 6 KiB ahead it reads ~10 % more again, with one core and with two
// (a throwaway harness over a 1 GiB /dev/shm array, this machine: 12.7-13.2 -> 14.4-14.8 GB/s
// on one thread, 23.0-23.8 -> 24.9-27.4 on two). A prefetch into L1 holds one of its few line
// fill buffers until the line arrives; one into L2 does not, so more lines are on their way.
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
