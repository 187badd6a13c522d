#include <algorithm>
#include <limits>

#include "zwq/kernel.hpp"

namespace zwq {

Status KernelRegistry::add(KernelInfo info) {
  if (info.name.empty() || info.fn == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "a kernel needs a name and a function");
  }
  if (std::string problem = kernel_spec_problem(spec_of(info)); !problem.empty()) {
    return make_error(ErrorCode::kInvalidArgument, problem);
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

namespace {

// Whether the space-separated `names` include `name`.
bool declares(std::string_view names, std::string_view name) {
  while (!names.empty()) {
    const auto space = names.find(' ');
    if (names.substr(0, space) == name) return true;
    if (space == std::string_view::npos) break;
    names.remove_prefix(space + 1);
  }
  return false;
}

}  // namespace

Status check_param_names(const KernelInfo& kernel, const Params& params) {
  if (kernel.params == nullptr) return Status::Ok();
  const std::string_view declared = kernel.params;
  for (const auto& entry : params.values) {
    if (declares(declared, entry.first)) continue;
    std::string takes = declared.empty() ? "it takes none" : "it takes: " + std::string(declared);
    return make_error(
        ErrorCode::kInvalidArgument,
        "kernel '" + kernel.name + "' has no parameter '" + entry.first + "' (" + takes + ")");
  }
  return Status::Ok();
}

Status check_params(const KernelInfo& kernel, const Params& params, DType input_dtype,
                    std::uint64_t job_count) {
  if (Status s = check_param_names(kernel, params); !s.ok()) return s;
  return kernel.validate != nullptr ? kernel.validate(params, input_dtype, job_count)
                                    : Status::Ok();
}

KernelSpec spec_of(const KernelInfo& info) {
  return KernelSpec{info.name,        info.combiner,     info.shape,
                    info.input_dtype, info.output_dtype, info.help};
}

std::vector<KernelSpec> KernelRegistry::specs() const {
  std::vector<KernelSpec> out;
  out.reserve(kernels_.size());
  for (const auto& k : kernels_) out.push_back(spec_of(k));
  return out;
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
    case Combiner::kExactSum:
      return exact_sum_value(m);
    case Combiner::kMin:
    case Combiner::kMax:
    case Combiner::kMoments:  // no elements, no extreme and no mean (numpy: an error, or nan)
      return m.n == 0 ? std::numeric_limits<double>::quiet_NaN() : m.hi;
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
  if (merged.combiner == Combiner::kMoments) {
    r.variance = merged.n > 0 ? merged.lo / static_cast<double>(merged.n)
                              : std::numeric_limits<double>::quiet_NaN();
  }
  r.merged = std::move(merged);
  return r;
}

namespace {

// The view a kernel of this shape needs is there and has the dtype the kernel insists on.
Status check_view(const KernelInfo& k, const char* role, const void* data, DType have, DType want) {
  if (data == nullptr || have == DType::kNone) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kernel '" + k.name + "' needs an " + role + " array");
  }
  if (want != DType::kNone && have != want) {
    return make_error(ErrorCode::kDtypeMismatch,
                      "kernel '" + k.name + "' reads " + std::string(role) + " of dtype " +
                          std::string(dtype_name(want)) + ", got " + std::string(dtype_name(have)));
  }
  return Status::Ok();
}

}  // namespace

Status run_kernel(const KernelInfo& kernel, const SliceContext& ctx, Partial& out) {
  const ShapeNeeds needs = shape_needs(kernel.shape);
  if (needs.input) {
    Status s = check_view(kernel, "input", ctx.in.data, ctx.in.dtype, kernel.input_dtype);
    if (!s.ok()) return s;
  }
  if (needs.input2) {
    Status s = check_view(kernel, "input2", ctx.in2.data, ctx.in2.dtype, kernel.input_dtype);
    if (!s.ok()) return s;
  }
  if (needs.output) {
    Status s = check_view(kernel, "output", ctx.out.data, ctx.out.dtype, kernel.output_dtype);
    if (!s.ok()) return s;
  }
  if (needs.param_sets && ctx.sets == nullptr && ctx.count != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kernel '" + kernel.name + "' needs the job's parameter sets");
  }
  std::size_t bins = 0;
  if (kernel.combiner == Combiner::kHistogram && ctx.params != nullptr) {
    bins = static_cast<std::size_t>(std::max<std::int64_t>(0, ctx.params->get_int("bins", 10)));
  }
  out = identity_partial(kernel.combiner, bins);
  return kernel.fn(ctx, out);
}

}  // namespace zwq
