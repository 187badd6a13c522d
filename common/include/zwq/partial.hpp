// Partial results and their exact, deterministic merge (the collector's arithmetic).
//
// A kernel turns one slice into one Partial. The collector merges partials into a job's result.
// Combiners whose merge is exact in any order (min, max, count, histogram, exact sum) merge on
// arrival; floating-point ones (sum, moments) are folded in slice order, so that a job's result is
// bitwise identical however many workers ran it and in whatever order their results arrived.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "zwq/msgpack_map.hpp"

#include "zwq/status.hpp"

namespace zwq {

// Wire-stable numbers (docs/PROTOCOL.md, "Partial").
enum class Combiner : std::uint8_t {
  kSum = 1,        // double-double sum: value = hi + lo
  kMin = 2,        // smallest element; NaN if any element is NaN
  kMax = 3,        // largest element; NaN if any element is NaN
  kMoments = 4,    // count, mean and M2 (sum of squared deviations), merged by Chan et al.
  kCount = 5,      // an exact unsigned count
  kHistogram = 6,  // fixed bins plus underflow and overflow, exact counts
  kGather = 7,     // opaque per-slice bytes returned in slice order (never merged)
  kExactSum = 8,   // exact sum: value = hi + lo + terms..., rounded once at the end
};
inline constexpr Combiner kLastCombiner = Combiner::kExactSum;
}  // namespace zwq
// Declared before any struct that packs a Combiner: MSGPACK_DEFINE's unpack is not a template.
MSGPACK_ADD_ENUM(zwq::Combiner);

namespace zwq {

std::string_view combiner_name(Combiner c);
// True when the merge is floating point and so must follow slice order to be deterministic.
bool combiner_is_order_sensitive(Combiner c);

// One slice's (or a run of slices') contribution. Which fields mean something depends on the
// combiner; the others stay zero/empty.
struct Partial {
  Combiner combiner = Combiner::kSum;
  std::uint64_t n = 0;  // elements or range points covered
  double hi = 0;        // kSum: high part; kMin/kMax: the extreme; kMoments: mean
  double lo = 0;        // kSum: low part (error term); kMoments: M2
  std::uint64_t count = 0;            // kCount
  std::vector<std::uint64_t> bins;    // kHistogram: bins..., underflow, overflow
  std::string bytes;                  // kGather
  // kExactSum: the components beyond hi and lo, when the exact value needs more than two
  // doubles. A non-finite hi instead carries the IEEE sum of non-finite elements (or the +-inf
  // of an overflow), and then lo and terms are empty.
  std::vector<double> terms;

  bool operator==(const Partial&) const = default;
  MSGPACK_DEFINE(combiner, n, hi, lo, count, bins, bytes, terms)
};

// An empty partial of a combiner (the identity of its merge).
Partial identity_partial(Combiner c, std::size_t histogram_bins = 0);

// Merges `p` into `acc`. Fails (kInvalidArgument) when combiners or histogram shapes differ, or
// for kGather, which is never merged. Deterministic: same inputs in the same order, same bits.
Status merge_into(Partial& acc, const Partial& p);

// ---- exact sums (kExactSum) ----
// An expansion: doubles, finite, non-overlapping, in increasing magnitude, whose mathematical
// sum is the value (Shewchuk's representation, as Python's math.fsum keeps it).

// Adds x to the expansion exactly. Returns false, leaving `terms` unchanged, when x is not
// finite or a running total would overflow; `overflow` (if given) then gets that total (+-inf,
// or NaN for a NaN x).
bool expansion_add(std::vector<double>& terms, double x, double* overflow = nullptr);
// The expansion's value, correctly rounded to the nearest double (ties to even).
double expansion_value(const std::vector<double>& terms);
// A kExactSum partial's value, correctly rounded: its non-finite hi, or hi + lo + terms.
double exact_sum_value(const Partial& p);
// Sets a kExactSum partial's hi, lo and terms from an expansion (the largest components first
// into hi and lo); `value` is left alone.
void set_exact_terms(Partial& p, const std::vector<double>& expansion);

// Adds a double to a double-double accumulator (hi, lo) without losing low-order bits.
void dd_add(double& hi, double& lo, double x);
// Adds another double-double.
void dd_add_dd(double& hi, double& lo, double x_hi, double x_lo);

// A job's final answer.
struct JobResult {
  double value = 0;         // the headline number: sum, min, max, mean, count, pi, ...
  double variance = 0;      // kMoments: population variance M2/n
  Partial merged;           // everything merged, for callers that want the raw fields
  std::vector<std::string> gathered;  // kGather: each slice's bytes, in slice order
  bool operator==(const JobResult&) const = default;
  ZWQ_DEFINE_MAP(value, variance, merged, gathered)
};

}  // namespace zwq
