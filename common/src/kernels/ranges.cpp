// Range kernels: no input array; a slice is the run of integer points
// [ctx.first, ctx.first + ctx.count) of the job's range [ctx.job_first, ctx.job_first + job_count).
#include <vector>

#include "kernels/kernels.hpp"

namespace zwq::kernels {
namespace {

// The slice must lie inside the job's range (the kernels below index by it).
Status check_range(std::string_view kernel, const SliceContext& ctx) {
  if (ctx.first < ctx.job_first || ctx.first - ctx.job_first > ctx.job_count ||
      ctx.count > ctx.job_count - (ctx.first - ctx.job_first)) {
    return invalid(kernel, "slice [" + std::to_string(ctx.first) + ", +" +
                               std::to_string(ctx.count) + ") lies outside the job's range [" +
                               std::to_string(ctx.job_first) + ", +" +
                               std::to_string(ctx.job_count) + ")");
  }
  return Status::Ok();
}

// ---- mcpi: a counter-based SplitMix64 stream ----

constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;  // SplitMix64's increment

// SplitMix64's output function (a bijection of 64-bit words).
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Top 53 bits as a double in [0, 1).
inline double unit(std::uint64_t z) {
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

// ---- primes: a segmented sieve ----

// Largest range end we sieve: base primes up to its square root are cached once per process
// (sqrt(10^12) = 10^6: ~78k primes, a few ms to build). Raising it grows that table and the
// per-slice cost of placing every base prime in the segment.
constexpr std::uint64_t kPrimesMaxEnd = 1'000'000'000'000ULL;
constexpr std::uint32_t kBaseLimit = 1'000'000;  // sqrt(kPrimesMaxEnd)
// Numbers sieved at a time: one byte each, so 256 KiB stays in L2 while every base prime
// strides through it. Smaller segments repeat the per-prime start computation more often.
constexpr std::uint64_t kSegment = std::uint64_t{1} << 18;

std::vector<std::uint32_t> small_primes(std::uint32_t limit) {
  std::vector<std::uint8_t> composite(limit + 1, 0);
  std::vector<std::uint32_t> primes;
  for (std::uint64_t p = 2; p <= limit; ++p) {
    if (composite[p]) continue;
    primes.push_back(static_cast<std::uint32_t>(p));
    for (std::uint64_t m = p * p; m <= limit; m += p) composite[m] = 1;
  }
  return primes;
}

const std::vector<std::uint32_t>& base_primes() {
  static const std::vector<std::uint32_t> primes = small_primes(kBaseLimit);  // thread-safe init
  return primes;
}

// Primes in [lo, hi), hi <= kPrimesMaxEnd.
std::uint64_t count_primes(std::uint64_t lo, std::uint64_t hi) {
  lo = std::max<std::uint64_t>(lo, 2);  // 0 and 1 are not prime
  if (lo >= hi) return 0;
  const auto& base = base_primes();
  std::vector<std::uint8_t> composite(std::min(kSegment, hi - lo));
  std::uint64_t total = 0;
  for (std::uint64_t seg = lo; seg < hi; seg += kSegment) {
    const std::uint64_t seg_end = std::min(hi, seg + kSegment);
    const std::uint64_t len = seg_end - seg;
    std::fill(composite.begin(), composite.begin() + len, 0);
    for (const std::uint32_t p : base) {
      const std::uint64_t pp = std::uint64_t{p} * p;
      if (pp >= seg_end) break;
      // Multiples below p*p have a smaller factor; p itself is never crossed out.
      const std::uint64_t start = std::max(pp, (seg + p - 1) / p * p);
      for (std::uint64_t m = start; m < seg_end; m += p) composite[m - seg] = 1;
    }
    for (std::uint64_t k = 0; k < len; ++k) total += composite[k] == 0;
  }
  return total;
}

}  // namespace

// Midpoint rule for the integral of 4 / (1 + x^2) over [0, 1] with N = job_count steps: point i
// of the job (counted from job_first) sits at x = (i + 0.5) / N. Each term carries the step, so
// the merged sum is pi itself.
Status pi(const SliceContext& ctx, Partial& out) {
  if (Status s = check_range("pi", ctx); !s) return s;
  out.n = ctx.count;
  const double step = 1.0 / static_cast<double>(ctx.job_count);
  const double scale = 4.0 * step;
  // Exact in double for any job below 2^53 points.
  const auto offset = static_cast<std::int64_t>(ctx.first - ctx.job_first);
  auto term = [step, scale, offset](std::uint64_t i) {
    const double x = (static_cast<double>(offset + static_cast<std::int64_t>(i)) + 0.5) * step;
    return scale / (1.0 + x * x);
  };
  dd_sum(ctx.count, term, out.hi, out.lo);
  return Status::Ok();
}

// Monte Carlo pi. Point p (its global index) draws x and y as outputs 2p and 2p+1 of a
// SplitMix64 stream whose start is a hash of the seed. Random access into the stream makes a
// slice's count a function of (seed, first, count) alone: any worker, any slicing, same answer.
Status mcpi(const SliceContext& ctx, Partial& out) {
  if (Status s = check_range("mcpi", ctx); !s) return s;
  const std::int64_t seed = ctx.params ? ctx.params->get_int("seed", 0) : 0;
  // Hash the seed so that nearby seeds start far apart in the stream.
  const std::uint64_t key = mix64(static_cast<std::uint64_t>(seed) ^ 0x6d63706973656564ULL);
  std::uint64_t inside = 0;
  for (std::uint64_t i = 0; i < ctx.count; ++i) {
    const std::uint64_t state = key + 2 * (ctx.first + i) * kGolden;  // wraps mod 2^64, as meant
    const double x = unit(mix64(state + kGolden));
    const double y = unit(mix64(state + 2 * kGolden));
    inside += (x * x + y * y < 1.0);
  }
  out.n = ctx.count;
  out.count = inside;
  return Status::Ok();
}

Status validate_mcpi(const Params& params, DType, std::uint64_t) {
  auto it = params.values.find("seed");
  if (it != params.values.end() && !std::holds_alternative<std::int64_t>(it->second)) {
    return invalid("mcpi", "parameter 'seed' must be an integer");
  }
  return Status::Ok();
}

double finalize_mcpi(const Partial& merged, const Params&, std::uint64_t job_count) {
  if (job_count == 0) return 0.0;
  return 4.0 * static_cast<double>(merged.count) / static_cast<double>(job_count);
}

// Counts the primes among the slice's points (a point's value is its index).
Status primes(const SliceContext& ctx, Partial& out) {
  if (ctx.count > kPrimesMaxEnd || ctx.first > kPrimesMaxEnd - ctx.count) {
    return invalid("primes", "range end " + std::to_string(ctx.first) + " + " +
                                 std::to_string(ctx.count) + " exceeds the supported maximum " +
                                 std::to_string(kPrimesMaxEnd));
  }
  out.n = ctx.count;
  out.count = count_primes(ctx.first, ctx.first + ctx.count);
  return Status::Ok();
}

Status validate_primes(const Params&, DType, std::uint64_t job_count) {
  if (job_count > kPrimesMaxEnd) {
    return invalid("primes", "at most " + std::to_string(kPrimesMaxEnd) + " points");
  }
  return Status::Ok();
}

}  // namespace zwq::kernels
