#include "validation.hpp"

#include <array>
#include <limits>
#include <string>

namespace zwq::broker {

namespace {

// "job ID: " (nothing when the client left the id to the broker).
std::string prefix(const JobSpec& spec) {
  return spec.job_id.empty() ? std::string() : "job " + spec.job_id + ": ";
}

Error invalid(const JobSpec& spec, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, prefix(spec) + what);
}

std::string known_kernels(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "none" : out;
}

Status check_dataset(const JobSpec& spec, const DatasetRef& d, const char* which, bool needed,
                     DType want) {
  if (!d.present()) {
    if (!needed) return Status::Ok();
    return invalid(spec, "kernel '" + spec.kernel + "' needs an " + which + " dataset");
  }
  if (!needed) {
    // As a function given an argument it does not take: the caller meant something else.
    return invalid(spec, "kernel '" + spec.kernel + "' reads no " + which + " dataset, but " +
                             d.uri + " was given as one");
  }
  if (Status s = check_dataset_uri(d.uri); !s.ok()) {
    return invalid(spec, std::string(which) + " " + s.error().message);
  }
  if (d.dtype == DType::kNone) {
    return invalid(spec, std::string(which) + " dataset " + d.uri + " has no dtype");
  }
  if (const std::string why = misaligned(d); !why.empty()) {
    return invalid(spec, std::string(which) + " dataset " + why);
  }
  if (want != DType::kNone && d.dtype != want) {
    return make_error(ErrorCode::kDtypeMismatch,
                      prefix(spec) + "kernel '" + spec.kernel + "' reads " + which + " of dtype " +
                          std::string(dtype_name(want)) + " but " + d.uri + " is " +
                          std::string(dtype_name(d.dtype)));
  }
  // first + count does not overflow (checked before).
  if (d.length != 0 && spec.first + spec.count > d.length) {
    return make_error(ErrorCode::kOutOfRange,
                      prefix(spec) + "elements [" + std::to_string(spec.first) + ", " +
                          std::to_string(spec.first + spec.count) + ") are outside " + d.uri +
                          " which holds " + std::to_string(d.length));
  }
  return Status::Ok();
}

}  // namespace

bool valid_job_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

// The job's parameter sets fit its kernel: only kParams kernels take them, and the job's sets
// [first, first + count) must all be there.
Status check_param_sets(const JobSpec& spec, bool wanted) {
  if (!wanted) {
    if (spec.param_sets.empty()) return Status::Ok();
    return invalid(spec, "kernel '" + spec.kernel + "' takes no parameter sets (got " +
                             std::to_string(spec.param_sets.size()) + ")");
  }
  if (spec.first + spec.count > spec.param_sets.size()) {
    return make_error(ErrorCode::kOutOfRange,
                      prefix(spec) + "parameter sets [" + std::to_string(spec.first) + ", " +
                          std::to_string(spec.first + spec.count) + ") are outside the " +
                          std::to_string(spec.param_sets.size()) + " the job carries");
  }
  return Status::Ok();
}

// Everything but the kernel lookup.
Result<const KernelInfo*> check_job(const JobSpec& spec, const KernelInfo* kernel,
                                    const ValidationLimits& limits) {
  if (spec.count > std::numeric_limits<std::uint64_t>::max() - spec.first) {
    return make_error(ErrorCode::kOutOfRange, prefix(spec) + "first + count overflows");
  }
  const ShapeNeeds needs = shape_needs(kernel->shape);
  const DType in = kernel->input_dtype;
  const DType out = kernel->output_dtype;
  if (Status s = check_dataset(spec, spec.input, "input", needs.input, in); !s.ok()) {
    return s.error();
  }
  if (Status s = check_dataset(spec, spec.input2, "input2", needs.input2, in); !s.ok()) {
    return s.error();
  }
  if (Status s = check_dataset(spec, spec.output, "output", needs.output, out); !s.ok()) {
    return s.error();
  }
  if (Status s = check_param_sets(spec, needs.param_sets); !s.ok()) return s.error();
  const std::array<const DatasetRef*, 3> datasets = {&spec.input, &spec.input2, &spec.output};
  for (std::size_t i = 0; i < datasets.size(); ++i) {
    const DatasetRef& d = *datasets[i];
    if (d.host.empty()) continue;
    if (!d.present()) return invalid(spec, "a dataset without a uri names host '" + d.host + "'");
    for (std::size_t k = 0; k < i; ++k) {
      if (!same_place(*datasets[k], d)) {
        return invalid(spec, "its datasets are on two hosts (" + memory_place(*datasets[k]) +
                                 " and " + memory_place(d) +
                                 "); one worker reads all of a job's datasets");
      }
    }
  }
  const std::uint64_t slice_size = effective_slice_size(spec, limits);
  if (slice_size == 0) return invalid(spec, "slice size must be at least 1");
  const std::uint64_t slices = spec.count == 0 ? 0 : (spec.count - 1) / slice_size + 1;
  if (slices > limits.max_slices_per_job) {
    return invalid(
        spec, std::to_string(spec.count) + " elements in slices of " + std::to_string(slice_size) +
                  " make " + std::to_string(slices) + " slices, more than the broker's limit of " +
                  std::to_string(limits.max_slices_per_job) + "; use a larger slice size");
  }
  Status params = limits.param_names ? check_param_names(*kernel, spec.params) : Status::Ok();
  if (params.ok() && kernel->validate != nullptr) {
    params = kernel->validate(spec.params, spec.input.dtype, spec.count);
  }
  if (Status s = params; !s.ok()) {
    Error e = s.error();
    e.message = prefix(spec) + e.message;
    return e;
  }
  return kernel;
}

Status check_id(const JobSpec& spec) {
  if (!spec.job_id.empty() && !valid_job_id(spec.job_id)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "job id '" + spec.job_id + "' must be 1-64 characters of A-Z a-z 0-9 . _ -");
  }
  return Status::Ok();
}

}  // namespace

std::uint64_t effective_slice_size(const JobSpec& spec, const ValidationLimits& limits) {
  if (spec.slice_size != 0) return spec.slice_size;
  return spec.param_sets.empty() ? limits.default_slice_size : 1;
}

Result<const KernelInfo*> validate_job(const JobSpec& spec, const KernelRegistry& kernels,
                                       const ValidationLimits& limits) {
  if (Status s = check_id(spec); !s.ok()) return s.error();
  const KernelInfo* kernel = kernels.find(spec.kernel);
  if (kernel == nullptr) {
    return make_error(ErrorCode::kUnknownKernel,
                      prefix(spec) + "unknown kernel '" + spec.kernel +
                          "' (known kernels: " + known_kernels(kernels.names()) + ")");
  }
  return check_job(spec, kernel, limits);
}

Result<const KernelInfo*> validate_job(const JobSpec& spec, const KernelCatalog& kernels,
                                       const ValidationLimits& limits) {
  if (Status s = check_id(spec); !s.ok()) return s.error();
  const KernelInfo* kernel = kernels.find(spec.kernel);
  if (kernel == nullptr) {
    return make_error(ErrorCode::kUnknownKernel,
                      prefix(spec) + "unknown kernel: no worker offers kernel '" + spec.kernel +
                          "'; offered: " + known_kernels(kernels.names()));
  }
  return check_job(spec, kernel, limits);
}

Result<const KernelInfo*> validate_job(const JobSpec& spec, const KernelInfo* kernel,
                                       const ValidationLimits& limits) {
  if (Status s = check_id(spec); !s.ok()) return s.error();
  return check_job(spec, kernel, limits);
}

}  // namespace zwq::broker
