// The streamed double-double sum of an f32 or f64 array: the loop behind the `sum` kernel (and,
// over products, behind `dot` of two f32 or two f64 arrays), built to run at memory bandwidth.
// Private to the built-in kernels (and their tests).
//
// The loop is compiled twice on x86-64: for the baseline instruction set every x86-64 has
// (SSE2) and for AVX2. Both add the same terms into the same lanes in the same order, so they
// return the same bits; AVX2 only does it with half the instructions. Nothing here throws.
#pragma once

#include <cstdint>

// Where the loops get an AVX2 build beside the baseline one (stream_sum.cpp says why).
#if defined(__x86_64__) && defined(__GNUC__)
#define ZWQ_HAVE_AVX2_BUILD 1
#endif

namespace zwq::kernels {

enum class Isa { kBaseline, kAvx2 };

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

// Whether this CPU runs `isa`. kBaseline always.
bool isa_supported(Isa isa);

// The fastest Isa this CPU runs; worked out once.
Isa best_isa();

// Adds x[0] + ... + x[n - 1] into (hi, lo), as dd_sum does. `isa` must be supported.
void stream_sum(const float* x, std::uint64_t n, double& hi, double& lo, Isa isa);
void stream_sum(const double* x, std::uint64_t n, double& hi, double& lo, Isa isa);

// Adds a[0] * b[0] + ... + a[n - 1] * b[n - 1] into (hi, lo), each product rounded to a double
// and summed as dd_sum does, with both arrays prefetched. `isa` must be supported.
void stream_dot(const float* a, const float* b, std::uint64_t n, double& hi, double& lo, Isa isa);
void stream_dot(const double* a, const double* b, std::uint64_t n, double& hi, double& lo, Isa isa);

}  // namespace zwq::kernels
