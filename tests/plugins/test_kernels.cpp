// A kernel plugin for the tests: one kernel per combiner and shape, each with an answer a test
// can compute by hand.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <zwq/kernel_sdk.hpp>

namespace {

double t_sum(std::span<const double> x) {
  double s = 0;
  for (double v : x) s += v;
  return s;
}

void fold_all(std::span<const double> x, zwq::sdk::Reducer& r) {
  for (double v : x) r.add(v);
}

// Each slice's first element and length: the client sees them per slice, in slice order.
std::vector<double> t_gather(std::span<const double> x) {
  return {x.empty() ? 0.0 : x.front(), static_cast<double>(x.size())};
}

// x * x for the set's x; fails for x < 0, throws for x == 13.
zwq::Status check_x(double x) {
  if (x < 0) return zwq::make_error(zwq::ErrorCode::kInvalidArgument, "t_square: x < 0");
  if (x == 13) throw std::runtime_error("unlucky 13");
  return zwq::Status::Ok();
}
zwq::Status t_square(const zwq::Params& p, zwq::sdk::Reducer& r) {
  const double x = p.get_double("x", 0) + p.get_double("offset", 0);
  if (zwq::Status s = check_x(x); !s.ok()) return s;
  r.gather(x * x);
  return zwq::Status::Ok();
}

double t_param_sum(const zwq::Params& p) {
  return p.get_double("x", 0);
}

// Sleeps `ms` (default 50) per task: jobs that stay running long enough to wait on and cancel.
std::int64_t t_sleep(const zwq::Params& p) {
  std::this_thread::sleep_for(std::chrono::milliseconds(p.get_int("ms", 50)));
  return p.get_int("ms", 50);
}

// out[i] = global index * `mul` (default 1).
void t_fill(std::span<std::int64_t> out, zwq::sdk::Range r, const zwq::Params& p) {
  const std::int64_t mul = p.get_int("mul", 1);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::int64_t>(r.first + i) * mul;
  }
}

zwq::Status refuse_negative_mul(const zwq::Params& p, zwq::DType, std::uint64_t) {
  if (p.get_int("mul", 1) < 0) {
    return zwq::make_error(zwq::ErrorCode::kInvalidArgument, "t_fill: mul must be >= 0");
  }
  return zwq::Status::Ok();
}

// Points in [first, first + count) divisible by 3.
std::uint64_t t_thirds(zwq::sdk::Range r) {
  std::uint64_t n = 0;
  for (std::uint64_t i = r.first; i < r.first + r.count; ++i) n += i % 3 == 0;
  return n;
}

}  // namespace

ZWQ_KERNEL("t_sum", t_sum, sum, reduce, .help = "sum of f64");
ZWQ_KERNEL("t_min", fold_all, min, reduce);
ZWQ_KERNEL("t_max", fold_all, max, reduce);
ZWQ_KERNEL("t_moments", fold_all, moments, reduce);
ZWQ_KERNEL("t_hist", fold_all, histogram, reduce);
ZWQ_KERNEL("t_gather", t_gather, gather, reduce);
ZWQ_KERNEL("t_square", t_square, gather, params);
ZWQ_KERNEL("t_param_sum", t_param_sum, sum, params);
ZWQ_KERNEL("t_sleep", t_sleep, gather, params);
ZWQ_KERNEL("t_fill", t_fill, count, generate, .validate = refuse_negative_mul);
ZWQ_KERNEL("t_thirds", t_thirds, count, range);
