// Private to the built-in kernels: their declarations and the few helpers they share.
//
// Each kernel is a KernelFn (see zwq/kernel.hpp); the table that names and registers them is in
// builtin.cpp. Nothing here throws.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "zwq/dtype.hpp"
#include "zwq/kernel.hpp"
#include "zwq/params.hpp"
#include "zwq/partial.hpp"
#include "zwq/status.hpp"

namespace zwq::kernels {

// ---- reductions.cpp (kReduce, kReduce2) ----
Status sum(const SliceContext& ctx, Partial& out);
Status fsum(const SliceContext& ctx, Partial& out);  // exact, rounded once (kExactSum)
Status fdot(const SliceContext& ctx, Partial& out);  // exact, rounded once (kExactSum)
Status minimum(const SliceContext& ctx, Partial& out);
Status maximum(const SliceContext& ctx, Partial& out);
Status moments(const SliceContext& ctx, Partial& out);  // `mean` and `var`
Status nonzero(const SliceContext& ctx, Partial& out);
Status dot(const SliceContext& ctx, Partial& out);
Status histogram(const SliceContext& ctx, Partial& out);
Status validate_histogram(const Params& params, DType input_dtype, std::uint64_t job_count);
double finalize_var(const Partial& merged, const Params& params, std::uint64_t job_count);

// ---- maps.cpp (kMap) ----
Status affine(const SliceContext& ctx, Partial& out);
Status square(const SliceContext& ctx, Partial& out);
Status power(const SliceContext& ctx, Partial& out);
Status cube(const SliceContext& ctx, Partial& out);
Status validate_affine(const Params& params, DType input_dtype, std::uint64_t job_count);
Status validate_pow(const Params& params, DType input_dtype, std::uint64_t job_count);

// ---- ranges.cpp (kRange) ----
Status pi(const SliceContext& ctx, Partial& out);
Status mcpi(const SliceContext& ctx, Partial& out);
Status primes(const SliceContext& ctx, Partial& out);
Status validate_primes(const Params& params, DType input_dtype, std::uint64_t job_count);
Status validate_mcpi(const Params& params, DType input_dtype, std::uint64_t job_count);
double finalize_mcpi(const Partial& merged, const Params& params, std::uint64_t job_count);

// ---- testing.cpp (tests and benchmarks) ----
Status noop(const SliceContext& ctx, Partial& out);  // also `noop_range`
Status sleep_ms(const SliceContext& ctx, Partial& out);
Status fail_at(const SliceContext& ctx, Partial& out);
Status validate_sleep(const Params& params, DType input_dtype, std::uint64_t job_count);
Status validate_fail_at(const Params& params, DType input_dtype, std::uint64_t job_count);
// Fault injection for the reliability tests: abort the worker process, or hang, on one slice.
Status abort_at(const SliceContext& ctx, Partial& out);
Status hang_at(const SliceContext& ctx, Partial& out);
Status validate_abort_at(const Params& params, DType input_dtype, std::uint64_t job_count);
Status validate_hang_at(const Params& params, DType input_dtype, std::uint64_t job_count);

// ---- shared helpers ----

inline Error invalid(std::string_view kernel, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, std::string(kernel) + ": " + what);
}

// An array view a kernel can read: non-null and of one of the five dtypes.
inline Status check_view(std::string_view kernel, const char* which, const void* data, DType t) {
  if (t == DType::kNone || dtype_size(t) == 0) {
    return invalid(kernel, std::string("unsupported ") + which + " dtype '" +
                               std::string(dtype_name(t)) + "'");
  }
  if (data == nullptr) return invalid(kernel, std::string("no ") + which + " array");
  return Status::Ok();
}

// A numeric parameter: empty when absent; an error when present but a string or not finite.
// (Params::get_double would silently fall back on a string, hiding a user's typo.)
inline Result<std::optional<double>> number_param(std::string_view kernel, const Params& params,
                                                  const std::string& name) {
  auto it = params.values.find(name);
  if (it == params.values.end()) return std::optional<double>();
  double v = 0;
  if (const auto* i = std::get_if<std::int64_t>(&it->second)) {
    v = static_cast<double>(*i);
  } else if (const auto* d = std::get_if<double>(&it->second)) {
    v = *d;
  } else {
    return invalid(kernel, "parameter '" + name + "' must be a number");
  }
  if (!(v - v == 0)) return invalid(kernel, "parameter '" + name + "' must be finite");
  return std::optional<double>(v);
}

// Elements per block of a double-double sum. Within a block, kLanes plain double accumulators
// (independent, so the loop pipelines and vectorises); each block total then enters (hi, lo)
// with one error-free dd_add. Smaller blocks round less (each lane adds kBlock / kLanes terms)
// but call dd_add more often; at 4096 dd_add is well under 1% of the time and a block still
// fits in L1 for the two-pass kernels.
inline constexpr std::uint64_t kBlock = 4096;
// Independent accumulators: a double add has a latency of ~4 cycles, so several vectors must be
// in flight to keep up with memory. 8 (four SSE2 vectors) does; 16 measured slower, as the
// unrolled loop then runs out of the 16 SSE registers and spills.
inline constexpr int kLanes = 8;
static_assert((kLanes & (kLanes - 1)) == 0, "dd_sum folds its lanes pairwise");

// A hint that the term for element i is about to be read from memory; by default none.
struct NoPrefetch {
  void operator()(std::uint64_t) const {}
};

// The lanes' sum, pairwise: lane j + lane j + width, halving the width (a fixed order).
inline double fold_lanes(double (&acc)[kLanes]) {
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int j = 0; j < width; ++j) acc[j] += acc[j + width];
  }
  return acc[0];
}

// Adds term(0) + ... + term(count - 1) into the double-double (hi, lo). The summation order is
// fixed, so the same terms always give the same bits.
template <typename Term, typename Prefetch = NoPrefetch>
void dd_sum(std::uint64_t count, const Term& term, double& hi, double& lo,
            const Prefetch& prefetch = {}) {
  for (std::uint64_t start = 0; start < count; start += kBlock) {
    const std::uint64_t len = std::min(kBlock, count - start);
    double acc[kLanes] = {};
    std::uint64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      prefetch(start + i);
      for (int j = 0; j < kLanes; ++j) acc[j] += term(start + i + j);
    }
    for (; i < len; ++i) acc[i % kLanes] += term(start + i);
    dd_add(hi, lo, fold_lanes(acc));
  }
}

}  // namespace zwq::kernels
