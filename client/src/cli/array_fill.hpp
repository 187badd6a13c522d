// Private to `zwq array`: filling a shared array with a pattern, and a reference sum.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "zwq/shared_array.hpp"

namespace zwq::cli {

enum class Pattern { kZero, kArange, kRandom, kConst };

// "zero", "arange", "random", "const".
std::optional<Pattern> parse_pattern(const std::string& name);

// splitmix64: output i (i = 0, 1, ...) of the generator seeded with `seed`. Counter based, so a
// fill can be cut into pieces and stays reproducible in any language:
//   state = seed + (i + 1) * 0x9e3779b97f4a7c15; z = mix(state).
std::uint64_t splitmix64_at(std::uint64_t seed, std::uint64_t i);

// Element i becomes: kZero 0; kArange i (converted to the dtype); kConst `value`; kRandom,
// from x = splitmix64_at(seed, i): floats uniform in [0, 1) (f64: (x >> 11) * 2^-53,
// f32: (x >> 40) * 2^-24), integers x % 100. Uses all cores.
void fill(const ShmSegment& array, Pattern pattern, double value, std::uint64_t seed);

// The sum of all elements in element order, accumulated in long double: a reference to compare
// a job's result with.
long double reference_sum(const ShmSegment& array);

}  // namespace zwq::cli
