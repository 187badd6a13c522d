#include <algorithm>

#include "zwq/kernel.hpp"

namespace zwq {

Status KernelRegistry::add(KernelInfo info) {
  if (info.name.empty() || info.fn == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "a kernel needs a name and a function");
  }
  if (find(info.name) != nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "kernel '" + info.name + "' is registered twice");
  }
  kernels_.push_back(std::move(info));
  return Status::Ok();
}

const KernelInfo* KernelRegistry::find(std::string_view name) const {
  auto it = std::find_if(kernels_.begin(), kernels_.end(),
                         [name](const KernelInfo& k) { return k.name == name; });
  return it == kernels_.end() ? nullptr : &*it;
}

std::vector<std::string> KernelRegistry::names() const {
  std::vector<std::string> out;
  out.reserve(kernels_.size());
  for (const auto& k : kernels_) out.push_back(k.name);
  return out;
}

namespace {

double default_value(const Partial& m) {
  switch (m.combiner) {
    case Combiner::kSum: return m.hi + m.lo;
    case Combiner::kMin:
    case Combiner::kMax:
    case Combiner::kMoments: return m.hi;
    case Combiner::kCount: return static_cast<double>(m.count);
    case Combiner::kHistogram:
    case Combiner::kGather: return static_cast<double>(m.n);
  }
  return 0;
}

}  // namespace

JobResult finalize_result(const KernelInfo& kernel, Partial merged, const Params& params,
                          std::uint64_t job_count) {
  JobResult r;
  r.value = kernel.finalize ? kernel.finalize(merged, params, job_count) : default_value(merged);
  if (merged.combiner == Combiner::kMoments && merged.n > 0) {
    r.variance = merged.lo / static_cast<double>(merged.n);
  }
  r.merged = std::move(merged);
  return r;
}

Status run_kernel(const KernelInfo& kernel, const SliceContext& ctx, Partial& out) {
  const bool needs_in = kernel.shape != KernelShape::kRange;
  if (needs_in && (ctx.in.data == nullptr || ctx.in.dtype == DType::kNone)) {
    return make_error(ErrorCode::kInvalidArgument, "kernel '" + kernel.name + "' needs an input");
  }
  if (kernel.shape == KernelShape::kReduce2 &&
      (ctx.in2.data == nullptr || ctx.in2.dtype == DType::kNone)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kernel '" + kernel.name + "' needs a second input");
  }
  if (kernel.shape == KernelShape::kMap &&
      (ctx.out.data == nullptr || ctx.out.dtype == DType::kNone)) {
    return make_error(ErrorCode::kInvalidArgument, "kernel '" + kernel.name + "' needs an output");
  }
  std::size_t bins = 0;
  if (kernel.combiner == Combiner::kHistogram && ctx.params != nullptr) {
    bins = static_cast<std::size_t>(std::max<std::int64_t>(0, ctx.params->get_int("bins", 10)));
  }
  out = identity_partial(kernel.combiner, bins);
  return kernel.fn(ctx, out);
}

}  // namespace zwq
