// The streamed double-double sum of an f32 or f64 array: the loop behind the `sum` kernel, the
// one kernel that runs at memory bandwidth. Private to the built-in kernels (and their tests).
//
// The loop is compiled twice on x86-64: for the baseline instruction set every x86-64 has
// (SSE2) and for AVX2. Both add the same terms into the same lanes in the same order, so they
// return the same bits; AVX2 only does it with half the instructions. Nothing here throws.
#pragma once

#include <cstdint>

namespace zwq::kernels {

enum class Isa { kBaseline, kAvx2 };

// Whether this CPU runs `isa`. kBaseline always.
bool isa_supported(Isa isa);

// The fastest Isa this CPU runs; worked out once.
Isa best_isa();

// Adds x[0] + ... + x[n - 1] into (hi, lo), as dd_sum does. `isa` must be supported.
void stream_sum(const float* x, std::uint64_t n, double& hi, double& lo, Isa isa);
void stream_sum(const double* x, std::uint64_t n, double& hi, double& lo, Isa isa);

}  // namespace zwq::kernels
