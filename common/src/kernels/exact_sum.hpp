// The exact sum of an f32 or f64 array: the loop behind the `fsum` kernel. Private to the
// built-in kernels (and their tests).
//
// Each block of the array is summed in plain double lanes, in a way that makes every lane sum
// exact, and the block's exact total is added to an expansion (zwq/partial.hpp). So the
// expansion holds the array's exact sum, whatever the blocks, slices or order.
//
// - float32: one streamed pass sums the block and notes its largest and smallest nonzero
//   magnitudes. While they lie within 2^17 of each other, 4096 of them add up without rounding
//   in doubles. A block whose range is wider is summed again from cache in levels of 18
//   binades each, from the top: each level's elements add up exactly.
// - float64: every element is split against the block's largest magnitude (Rump's extraction:
//   (sigma + x) - sigma) into a high part whose sums are exact and a remainder; the remainders
//   are split in turn until they are all zero. The first split is made as the block streams
//   in, against the largest magnitude of the block before; the same pass checks the guess,
//   and a block that exceeds it is split again from cache.
//
// Like stream_sum, the loops are built for SSE2 and for AVX2; both give the same expansion.
// Nothing here throws; a NaN or infinity goes to `special` (their IEEE sum), as does the
// +-inf of a total beyond the largest double.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/stream_sum.hpp"

namespace zwq::kernels {

struct ExactSum {
  std::vector<double> expansion;  // the finite elements' exact sum (zwq/partial.hpp)
  double special = 0;             // the IEEE sum of the specials met; 0 if none
  bool has_special = false;
};

// Adds x[0] + ... + x[n - 1] into `acc`. `isa` must be supported.
void exact_sum(const float* x, std::uint64_t n, ExactSum& acc, Isa isa);
void exact_sum(const double* x, std::uint64_t n, ExactSum& acc, Isa isa);

}  // namespace zwq::kernels
