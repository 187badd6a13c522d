// Kernels for tests and benchmarks: they measure the machinery around a kernel, not arithmetic.
#include <chrono>
#include <cstdlib>
#include <thread>

#include "kernels/kernels.hpp"

namespace zwq::kernels {

// Touches no data, so a job of it times dispatch, transport and merging alone.
Status noop(const SliceContext& ctx, Partial& out) {
  out.n = ctx.count;
  out.count = ctx.count;
  return Status::Ok();
}

// Sleeps `ms` milliseconds per slice: makes jobs long enough to watch progress or cancel them.
Status sleep_ms(const SliceContext& ctx, Partial& out) {
  const double ms = ctx.params ? ctx.params->get_double("ms", 1.0) : 1.0;
  if (!(ms >= 0)) return invalid("sleep", "parameter 'ms' must be >= 0");
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
  out.n = ctx.count;
  out.count = ctx.count;
  return Status::Ok();
}

// Fails on slice number `slice` (and only there): exercises error reporting end to end.
Status fail_at(const SliceContext& ctx, Partial& out) {
  const std::int64_t slice = ctx.params ? ctx.params->get_int("slice", -1) : -1;
  if (slice >= 0 && ctx.slice == static_cast<std::uint64_t>(slice)) {
    return make_error(ErrorCode::kKernelFailed,
                      "fail_at: slice " + std::to_string(slice) + " failed on purpose");
  }
  out.n = ctx.count;
  out.count = ctx.count;
  return Status::Ok();
}

// An upper bound that catches a unit mistake (seconds typed as ms) before a job hangs a test.
constexpr std::int64_t kMaxSleepMs = 60'000;

Status validate_sleep(const Params& params, DType, std::uint64_t) {
  auto ms = number_param("sleep", params, "ms");
  if (!ms) return ms.error();
  const double v = ms.value().value_or(1.0);
  if (v < 0 || v > static_cast<double>(kMaxSleepMs)) {
    return invalid("sleep", "parameter 'ms' must be in 0.." + std::to_string(kMaxSleepMs));
  }
  return Status::Ok();
}

Status validate_fail_at(const Params& params, DType, std::uint64_t) {
  auto it = params.values.find("slice");
  if (it == params.values.end()) return invalid("fail_at", "parameter 'slice' is required");
  const auto* v = std::get_if<std::int64_t>(&it->second);
  if (v == nullptr || *v < 0) {
    return invalid("fail_at", "parameter 'slice' must be an integer >= 0");
  }
  return Status::Ok();
}

// Kills its worker process (std::abort, as a crashing kernel would) on slice number `slice`:
// the broker must notice the dead worker, retry the slice elsewhere and, after
// --max-lost-attempts losses, fail the job naming the slice (docs/RELIABILITY.md).
Status abort_at(const SliceContext& ctx, Partial& out) {
  const std::int64_t slice = ctx.params ? ctx.params->get_int("slice", -1) : -1;
  if (slice >= 0 && ctx.slice == static_cast<std::uint64_t>(slice)) std::abort();
  out.n = ctx.count;
  out.count = ctx.count;
  return Status::Ok();
}

// Hangs `ms` milliseconds (default 10 minutes) on slice number `slice`, as a stuck kernel would,
// while its worker stays alive and keeps heartbeating: only the broker's lease can find it.
Status hang_at(const SliceContext& ctx, Partial& out) {
  const std::int64_t slice = ctx.params ? ctx.params->get_int("slice", -1) : -1;
  if (slice >= 0 && ctx.slice == static_cast<std::uint64_t>(slice)) {
    const double ms = ctx.params->get_double("ms", 600'000.0);
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
  }
  out.n = ctx.count;
  out.count = ctx.count;
  return Status::Ok();
}

Status validate_abort_at(const Params& params, DType dtype, std::uint64_t count) {
  if (Status s = validate_fail_at(params, dtype, count); !s.ok()) {
    return invalid("abort_at", "parameter 'slice' must be an integer >= 0");
  }
  return Status::Ok();
}

Status validate_hang_at(const Params& params, DType dtype, std::uint64_t count) {
  if (Status s = validate_fail_at(params, dtype, count); !s.ok()) {
    return invalid("hang_at", "parameter 'slice' must be an integer >= 0");
  }
  auto ms = number_param("hang_at", params, "ms");
  if (!ms) return ms.error();
  const double v = ms.value().value_or(600'000.0);
  if (!(v >= 0) || v > 3'600'000.0) {
    return invalid("hang_at", "parameter 'ms' must be in 0..3600000");
  }
  return Status::Ok();
}

}  // namespace zwq::kernels
