// Executor: computes the slices of a Tasks message on the mapped datasets, in place. Socket-free.
//
// prepare() does the per-message work once (kernel lookup, dataset paths, one stat and at most
// one mmap per dataset through the DatasetCache); PreparedJob::run() then computes one slice.
// Every failure becomes the slice's outcome (code + message), never an exception or a crash:
// an unknown kernel, a dataset read as another dtype than it records or from inside its .npy
// header, a missing or too short dataset (checked before memory is touched, and a
// SIGBUS from a file truncated mid-slice is caught), a bad slice size, parameters the kernel's
// validate function refuses, a slice past the job's parameter sets, a kernel's own error.
//
// Thread safety: an Executor and its cache belong to one thread. A PreparedJob keeps its
// mappings alive and may outlive their eviction from the cache, but not its Executor: its
// slices hand the chunks they read next to the executor's Prefaulter.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataset_cache.hpp"
#include "prefaulter.hpp"
#include "zwq/kernel.hpp"
#include "zwq/messages.hpp"
#include "zwq/status.hpp"

namespace zwq::worker {

// One job made ready to run: its kernel and the datasets its shape needs, mapped.
class PreparedJob {
 public:
  // Computes slice `slice` (covering elements [first + slice*slice_size, first + min(count,
  // (slice+1)*slice_size))) as attempt `attempt`. Success: code kOk and the kernel's partial.
  // Failure: the set-up error, kInvalidArgument (slice size 0), kOutOfRange (slice beyond the
  // job), kDatasetTooShort (the file cannot hold the slice, or shrank while it ran), or the
  // kernel's error; the message names the dataset and the numbers involved.
  SliceOutcome run(std::uint64_t slice, std::uint32_t attempt) const;

  // The error every slice of this job gets (unknown kernel, missing dataset, ...), if any.
  const std::optional<Error>& setup_error() const { return setup_error_; }
  const JobSpec& job() const { return job_; }

 private:
  friend class Executor;
  struct Array {
    std::string uri;
    std::string path;
    std::shared_ptr<const MappedFile> file;
    DType dtype = DType::kNone;
    std::uint64_t byte_offset = 0;
    std::uint64_t data_end = 0;  // where the recorded elements end (else the file's size)
    bool recorded = false;       // whether a .npy header or sidecar records a count
  };

  std::optional<Error> check_fits(const Array& a, std::uint64_t slice, std::uint64_t first,
                                  std::uint64_t end) const;

  JobSpec job_;
  const KernelInfo* kernel_ = nullptr;
  std::optional<Error> setup_error_;
  std::optional<Array> in_, in2_, out_;
  Prefaulter* prefaulter_ = nullptr;  // the executor's; populates what the next slices read
};

class Executor {
 public:
  // `cache` and `registry` must outlive the executor.
  explicit Executor(DatasetCache& cache,
                    const KernelRegistry& registry = KernelRegistry::builtin());

  // Looks up the kernel and maps the datasets it needs (input read-only, output read-write).
  // Never fails: a problem is kept in setup_error() and becomes every slice's outcome.
  PreparedJob prepare(const JobSpec& job);

  // Every slice of every run of `tasks`, in order (convenience for tests and tools).
  std::vector<SliceOutcome> execute(const msg::Tasks& tasks);

  // The kernels this executor runs.
  const KernelRegistry& registry() const { return registry_; }

  // Blocks until its prefaulter has populated what the slices so far asked for (tests, tools).
  void wait_prefaulted() { prefaulter_.wait_idle(); }

 private:
  Result<PreparedJob::Array> open_array(const char* role, const DatasetRef& ref,
                                        MappedFile::Mode mode);

  DatasetCache& cache_;
  const KernelRegistry& registry_;
  Prefaulter prefaulter_;
};

}  // namespace zwq::worker
