// The kernel SDK: how a computation over one slice is written, described and registered.
//
// A kernel is a plain function over one slice of a job. It reads its input directly from the
// shared mapping (no copy), may write an output slice in place, and fills one Partial. Kernels
// must be deterministic: the same slice gives the same bits on any worker.
//
// Adding a built-in kernel takes one function and one line in the table in
// common/src/kernels/builtin.cpp. User kernels are written with zwq/kernel_sdk.hpp, built as a
// plugin and loaded by `zwq-worker --plugin` (docs/PLUGINS.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "zwq/dtype.hpp"
#include "zwq/kernel_spec.hpp"
#include "zwq/params.hpp"
#include "zwq/partial.hpp"
#include "zwq/status.hpp"

namespace zwq {

// A typed view of one slice of an array, already offset to the slice's first element.
struct SliceView {
  const void* data = nullptr;
  DType dtype = DType::kNone;
  template <typename T>
  const T* as() const { return static_cast<const T*>(data); }
};
struct MutableSliceView {
  void* data = nullptr;
  DType dtype = DType::kNone;
  template <typename T>
  T* as() const { return static_cast<T*>(data); }
};

// Everything a kernel sees for one slice.
struct SliceContext {
  std::uint64_t slice = 0;      // slice index within the job
  std::uint64_t first = 0;      // global index of the slice's first element or range point
  std::uint64_t count = 0;      // elements or points in this slice (>= 1)
  std::uint64_t job_first = 0;  // the job's whole range: [job_first, job_first + job_count)
  std::uint64_t job_count = 0;
  SliceView in;          // kReduce, kReduce2, kMap
  SliceView in2;         // kReduce2
  MutableSliceView out;  // kMap, kGenerate
  const Params* params = nullptr;
  // kParams: the slice's `count` parameter sets (sets[0] is the job's set number `first`).
  const Params* sets = nullptr;
};

// Fills `out` (already set to identity_partial(combiner)) for one slice. Returns an error with
// code kKernelFailed or kInvalidArgument and a message naming the problem; never throws.
using KernelFn = Status (*)(const SliceContext& ctx, Partial& out);
// Checks a job's parameters before it runs (nullptr: anything goes). `job_count` is the job's
// element or point count.
using ValidateFn = Status (*)(const Params& params, DType input_dtype, std::uint64_t job_count);
// Turns the merged partial into the job's headline value (nullptr: the combiner's default:
// sum -> hi + lo, min/max -> hi, moments -> mean, count -> count, histogram -> n).
using FinalizeFn = double (*)(const Partial& merged, const Params& params, std::uint64_t job_count);

struct KernelInfo {
  std::string name;
  KernelFn fn = nullptr;
  Combiner combiner = Combiner::kSum;
  KernelShape shape = KernelShape::kReduce;
  ValidateFn validate = nullptr;
  FinalizeFn finalize = nullptr;
  std::string help;  // one line for `zwq kernels` and error messages
  // The parameter names it reads, space-separated ("lo hi bins"; "" for none); nullptr: not
  // declared (a plugin's), so any name passes on to `validate`. See check_params().
  const char* params = nullptr;
  DType input_dtype = DType::kNone;   // input (and input2) must have this dtype; none: any
  DType output_dtype = DType::kNone;  // output must have this dtype; none: any
};

// The announced form of a kernel (what Hello and InfoRep carry).
KernelSpec spec_of(const KernelInfo& info);

// A name -> KernelInfo table. Lookups are thread-safe once built; add() is not.
class KernelRegistry {
 public:
  // Adds a kernel. Fails (kInvalidArgument) on an empty name, a null fn or a duplicate name.
  Status add(KernelInfo info);
  // The kernel of that name, or nullptr.
  const KernelInfo* find(std::string_view name) const;
  std::vector<std::string> names() const;
  std::vector<KernelSpec> specs() const;
  std::size_t size() const { return kernels_.size(); }
  // The kernels zwq ships with (built once, on first use; thread-safe).
  static const KernelRegistry& builtin();

 private:
  std::vector<KernelInfo> kernels_;
};

// Refuses a parameter name `kernel` does not declare (KernelInfo::params): kInvalidArgument,
// naming those it takes (a misspelt name would otherwise be ignored, and the job run on the
// default). Any name passes a kernel that declares none.
Status check_param_names(const KernelInfo& kernel, const Params& params);

// A job's parameters as `kernel` sees them: check_param_names(), then its validate (its error).
Status check_params(const KernelInfo& kernel, const Params& params, DType input_dtype,
                    std::uint64_t job_count);

// Final value of a job: the kernel's finalize, or the combiner's default.
JobResult finalize_result(const KernelInfo& kernel, Partial merged, const Params& params,
                          std::uint64_t job_count);

// Runs `kernel` on one slice: checks shape and dtypes vs. views, sets `out` to the identity and
// calls fn.
Status run_kernel(const KernelInfo& kernel, const SliceContext& ctx, Partial& out);

}  // namespace zwq
