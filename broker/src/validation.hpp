// Checks a submitted JobSpec before the broker accepts it (docs/PROTOCOL.md, "Submit").
//
// Socket-free; pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "kernel_catalog.hpp"
#include "zwq/kernel.hpp"
#include "zwq/messages.hpp"
#include "zwq/status.hpp"

namespace zwq::broker {

struct ValidationLimits {
  std::uint64_t default_slice_size = 262144;                  // used when the spec asks for 0
  std::uint64_t max_slices_per_job = std::uint64_t{1} << 24;  // more would cost too much memory
  // Refuse parameter names the kernel does not declare (check_params). Off for a job restored
  // from the journal: an earlier broker accepted it, and it must not vanish on an upgrade (a
  // worker that refuses the name fails the job, with the reason, instead).
  bool param_names = true;
};

// 1 to 64 characters of [A-Za-z0-9._-].
bool valid_job_id(std::string_view id);

// Validates `spec` (whose job_id may still be empty) and returns its kernel. Fails with:
//  kInvalidArgument  bad job id, a dataset the kernel's shape needs is absent, a present dataset
//                    has dtype none, too many slices for the slice size, parameter sets given to
//                    a kernel that takes none, or the kernel's own parameter check fails;
//  kUnknownKernel    no such kernel (the message lists the known ones);
//  kDtypeMismatch    a dataset's dtype is not the one the kernel insists on;
//  kOutOfRange       first + count overflows, or exceeds a dataset's known length or the number
//                    of parameter sets.
Result<const KernelInfo*> validate_job(const JobSpec& spec, const KernelRegistry& kernels,
                                       const ValidationLimits& limits);
// The same against the built-in kernels and those live workers offer; an unknown kernel's
// error says that no worker offers it and lists what is offered.
Result<const KernelInfo*> validate_job(const JobSpec& spec, const KernelCatalog& kernels,
                                       const ValidationLimits& limits);
// The same against one given definition (a job restored from the journal; `kernel` not null).
Result<const KernelInfo*> validate_job(const JobSpec& spec, const KernelInfo* kernel,
                                       const ValidationLimits& limits);

// The slice size a job will run with: the spec's, or the default when it asks for 0 (for a job
// of parameter sets: one set per slice).
std::uint64_t effective_slice_size(const JobSpec& spec, const ValidationLimits& limits);

}  // namespace zwq::broker
