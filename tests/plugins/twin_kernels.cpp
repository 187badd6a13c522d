// A plugin whose kernel is named like one of test_kernels: loading both must fail.
#include <span>
#include <zwq/kernel_sdk.hpp>

namespace {
double other_sum(std::span<const double> x) {
  return static_cast<double>(x.size());
}
}  // namespace

ZWQ_KERNEL("t_sum", other_sum, sum, reduce);
