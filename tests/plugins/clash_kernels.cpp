// A plugin whose kernel is named like a built-in one: loading it must fail.
#include <span>
#include <zwq/kernel_sdk.hpp>

namespace {
double fake_sum(std::span<const double> x) {
  return static_cast<double>(x.size());
}
}  // namespace

ZWQ_KERNEL("sum", fake_sum, sum, reduce);
