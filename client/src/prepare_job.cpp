// prepare_job(): the client-side checks and defaults of a job, before anything is sent.
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <optional>
#include <random>
#include <tuple>
#include <utility>

#include "zwq/client.hpp"

namespace zwq {

namespace {

// Which datasets a job uses, and the dtypes its kernel insists on (none: any).
struct Needs {
  bool input = false;
  bool input2 = false;
  bool output = false;
  bool param_sets = false;
  DType input_dtype = DType::kNone;
  DType output_dtype = DType::kNone;
};

Needs needs_of(const KernelSpec& k) {
  const ShapeNeeds n = shape_needs(k.shape);
  return {n.input, n.input2, n.output, n.param_sets, k.input_dtype, k.output_dtype};
}

// What is known of a kernel: a local definition, the broker's description, or only its name.
struct KernelKnowledge {
  const KernelInfo* local = nullptr;  // built in: its validate runs too
  std::optional<KernelSpec> spec;     // shape known
};

bool valid_job_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

Status check_present(const std::string& kernel, const char* role, bool needed,
                     const DatasetRef& ref) {
  if (needed && !ref.present()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kernel '" + kernel + "' needs an " + role + " dataset");
  }
  if (!needed && ref.present()) {
    return make_error(ErrorCode::kInvalidArgument, "kernel '" + kernel + "' takes no " + role +
                                                       " dataset (got '" + ref.uri + "')");
  }
  return Status::Ok();
}

// Fills in dtype (recorded, else `fallback`), byte_offset (a .npy header) and length; `want`
// (none: any) is the dtype the kernel insists on.
Result<DatasetRef> describe(DatasetRef ref, DType fallback, DType want) {
  if (ref.dtype == DType::kNone) {
    auto inspected = inspect_dataset(ref.uri);  // what the file records (.npy, sidecar), if any
    if (!inspected.ok()) return inspected.error();
    ref.dtype = inspected.value().recorded_dtype.value_or(want != DType::kNone ? want : fallback);
    if (ref.dtype == DType::kNone) {
      return make_error(ErrorCode::kInvalidArgument,
                        "dataset '" + ref.uri +
                            "' records no dtype (no .zwq-meta sidecar, not a "
                            ".npy): say which it is (DatasetRef::dtype, --dtype)");
    }
  }
  if (want != DType::kNone && ref.dtype != want) {
    return make_error(ErrorCode::kDtypeMismatch,
                      "dataset '" + ref.uri + "' is " + std::string(dtype_name(ref.dtype)) +
                          " but the kernel reads " + std::string(dtype_name(want)));
  }
  auto info = probe_dataset(ref, 0);
  if (!info.ok()) return info.error();
  if (ref.byte_offset == 0) ref.byte_offset = info.value().header_bytes;
  if (const std::string why = misaligned(ref); !why.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "dataset " + why);
  }
  const std::uint64_t end = info.value().data_end();  // (a .npy's shape, a sidecar's count)
  ref.length = (end - std::min(end, ref.byte_offset)) / dtype_size(ref.dtype);
  return ref;
}

// Resolves the job's datasets and its count; checks that each holds first + count elements.
Status resolve_datasets(const JobRequest& req, const Needs& needs, JobSpec& spec) {
  if (spec.input.present()) {
    auto in = describe(spec.input, DType::kNone, needs.input_dtype);
    if (!in.ok()) return in.error();
    spec.input = in.value();
  }
  const DType fallback = spec.input.dtype;
  for (auto [ref, want] :
       {std::pair{&spec.input2, needs.input_dtype}, std::pair{&spec.output, needs.output_dtype}}) {
    if (!ref->present()) continue;
    auto d = describe(*ref, fallback, want);
    if (!d.ok()) {
      Error e = d.error();
      if (ref == &spec.output && e.code == ErrorCode::kDatasetMissing) {
        // A map or generate kernel writes into an array that exists, as numpy's out= does.
        e.message +=
            " (the output array must exist: create it first, e.g. zwq array create "
            "NAME --dtype f32 --count N, or SharedArray::create)";
      }
      return e;
    }
    *ref = d.value();
  }
  // The dataset that sets the job's length: the input, or the output of a generate kernel.
  const DatasetRef* measure = needs.input ? &spec.input : needs.output ? &spec.output : nullptr;
  if (req.count) {
    spec.count = *req.count;
  } else if (measure != nullptr) {
    if (spec.first > measure->length) {
      return make_error(ErrorCode::kOutOfRange,
                        "first element " + std::to_string(spec.first) + " lies past the end of '" +
                            measure->uri + "' (" + std::to_string(measure->length) + " elements)");
    }
    spec.count = measure->length - spec.first;
    // Two inputs are read element by element together, as numpy's dot wants them aligned.
    if (spec.input2.present() && spec.input2.length != spec.input.length) {
      return make_error(ErrorCode::kInvalidArgument,
                        "'" + spec.input.uri + "' holds " + std::to_string(spec.input.length) +
                            " elements but '" + spec.input2.uri + "' holds " +
                            std::to_string(spec.input2.length) +
                            ": the two inputs must be of one length (or give a count)");
    }
  }
  for (const DatasetRef* ref : {&spec.input, &spec.input2, &spec.output}) {
    if (!ref->present()) continue;
    auto probe = probe_dataset(*ref, spec.first + spec.count);
    if (!probe.ok()) return probe.error();
  }
  return Status::Ok();
}

// Without probing, the request itself must say everything.
Status check_unprobed(const JobRequest& req, const Needs& needs, JobSpec& spec) {
  if (!req.count && (needs.input || needs.output)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a job without dataset checks needs an explicit count");
  }
  spec.count = req.count.value_or(0);
  for (const DatasetRef* ref : {&spec.input, &spec.input2, &spec.output}) {
    if (ref->present() && ref->dtype == DType::kNone) {
      return make_error(ErrorCode::kInvalidArgument,
                        "dataset '" + ref->uri + "' needs a dtype when dataset checks are off");
    }
  }
  return Status::Ok();
}

// 1 in the process that loaded us, one more in each child forked since: a child re-seeds the
// generator that it would otherwise share with its parent, without a getpid() call per id.
std::atomic<unsigned> fork_count{1};

// Registered when the library loads, before any thread of the program could fork. (A child made
// by a raw clone() runs no fork handlers and would draw its parent's ids.)
const bool fork_counted = [] {
  ::pthread_atfork(nullptr, nullptr, [] { fork_count.fetch_add(1); });
  return true;
}();

unsigned fork_generation() {
  return fork_count.load(std::memory_order_relaxed);
}

}  // namespace

std::string random_job_id() {
  // One generator per thread, seeded from the system's entropy: opening std::random_device for
  // every id cost microseconds per job, which a batch of 10^5 small jobs noticed. Reseeded in a
  // forked child, which would otherwise draw the same ids as its parent.
  thread_local std::mt19937_64 engine;
  thread_local unsigned seeded_in = 0;  // the fork_generation() it was seeded in; 0: not yet
  if (seeded_in != fork_generation()) {
    std::random_device rd;
    std::seed_seq seed{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    engine.seed(seed);
    seeded_in = fork_generation();
  }
  // 15 characters of [0-9A-Za-z], about 89 random bits: more than the 64 of 16 hex digits,
  // and short enough for std::string to keep inline (no heap allocation for each of the many
  // copies a job's id makes in the client and the broker). Never a leading '-', so an id can be
  // passed to the CLI as it is.
  static constexpr char kDigits[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  // Seven characters from each draw: 62^7 is so small beside 2^64 that the remainders stay
  // uniform (to 1 part in 5 million).
  constexpr std::uint64_t kPerDraw = 7;
  std::string id(kJobIdChars, '\0');
  std::uint64_t draw = 0;
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (i % kPerDraw == 0) draw = engine() % 3521614606208ULL;  // 62^7
    id[i] = kDigits[draw % 62];
    draw /= 62;
  }
  return id;
}

namespace {

Result<JobSpec> prepare(const JobRequest& req, const KernelKnowledge& kernel) {
  JobSpec spec;
  spec.job_id = req.job_id.empty() ? random_job_id() : req.job_id;
  spec.kernel = req.kernel;
  spec.input = req.input;
  spec.input2 = req.input2;
  spec.output = req.output;
  spec.first = req.first;
  spec.slice_size = req.slice_size;
  spec.params = req.params;
  spec.param_sets = req.param_sets;
  // A file in /dev/shm (with `here`, any file) is this host's: the broker sends the job only to
  // workers that see this /dev/shm.
  for (DatasetRef* d : {&spec.input, &spec.input2, &spec.output}) stamp_dataset(*d, req.here);
  if (!valid_job_id(spec.job_id)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "job id '" + spec.job_id + "' must be 1-64 characters of [A-Za-z0-9._-]");
  }
  // A kernel only the broker knows by name: use the datasets the request names; the broker
  // checks them.
  const Needs needs = kernel.spec ? needs_of(*kernel.spec)
                                  : Needs{req.input.present(), req.input2.present(),
                                          req.output.present(), !req.param_sets.empty()};
  for (auto [role, needed, ref] : {std::tuple{"input", needs.input, &req.input},
                                   std::tuple{"input2", needs.input2, &req.input2},
                                   std::tuple{"output", needs.output, &req.output}}) {
    if (Status s = check_present(req.kernel, role, needed, *ref); !s.ok()) return s.error();
  }
  if (!needs.param_sets && !req.param_sets.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "kernel '" + req.kernel +
                                                       "' takes no parameter sets (got " +
                                                       std::to_string(req.param_sets.size()) + ")");
  }
  if (needs.param_sets && !req.count) {
    if (req.first > req.param_sets.size()) {
      return make_error(ErrorCode::kOutOfRange,
                        "first set " + std::to_string(req.first) + " lies past the " +
                            std::to_string(req.param_sets.size()) + " parameter sets");
    }
  }
  const bool counted = needs.input || needs.output || needs.param_sets;
  if (!counted && !req.count) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kernel '" + req.kernel + "' runs over a range of points: give a count");
  }
  if (req.count && *req.count > std::numeric_limits<std::uint64_t>::max() - req.first) {
    return make_error(ErrorCode::kOutOfRange, "first + count overflows");
  }
  if (needs.param_sets) {
    if (req.param_sets.empty() && req.count.value_or(0) > 0) {  // (none, for none: Pool.starmap)
      return make_error(ErrorCode::kInvalidArgument,
                        "kernel '" + req.kernel +
                            "' runs once per parameter set, and a count was given without them "
                            "(JobRequest::sets, Pool::starmap; the zwq command cannot give them)");
    }
    spec.count = req.count.value_or(req.param_sets.size() - req.first);
    if (spec.first + spec.count > req.param_sets.size()) {
      return make_error(ErrorCode::kOutOfRange,
                        "parameter sets [" + std::to_string(spec.first) + ", " +
                            std::to_string(spec.first + spec.count) + ") are outside the " +
                            std::to_string(req.param_sets.size()) + " given");
    }
  } else {
    Status s =
        req.check_datasets ? resolve_datasets(req, needs, spec) : check_unprobed(req, needs, spec);
    if (!s.ok()) return s.error();
  }
  if (kernel.local) {
    if (Status v = check_params(*kernel.local, spec.params, spec.input.dtype, spec.count);
        !v.ok()) {
      return v.error();
    }
  }
  return spec;
}

Error unknown_kernel(const std::string& name, std::vector<std::string> remote) {
  std::vector<std::string> known = KernelRegistry::builtin().names();
  for (auto& r : remote) {
    if (std::find(known.begin(), known.end(), r) == known.end()) known.push_back(std::move(r));
  }
  return make_error(ErrorCode::kUnknownKernel,
                    "unknown kernel '" + name + "' (known: " + join(known) + ")");
}

}  // namespace

Result<JobSpec> prepare_job(const JobRequest& req, const std::vector<std::string>& remote_kernels) {
  KernelKnowledge k;
  k.local = KernelRegistry::builtin().find(req.kernel);
  if (k.local) {
    k.spec = spec_of(*k.local);
  } else if (std::find(remote_kernels.begin(), remote_kernels.end(), req.kernel) ==
             remote_kernels.end()) {
    return unknown_kernel(req.kernel, remote_kernels);
  }
  return prepare(req, k);
}

Result<JobSpec> prepare_job(const JobRequest& req, const std::vector<KernelSpec>& remote_kernels) {
  KernelKnowledge k;
  k.local = KernelRegistry::builtin().find(req.kernel);
  if (k.local) {
    k.spec = spec_of(*k.local);
  } else {
    auto it = std::find_if(remote_kernels.begin(), remote_kernels.end(),
                           [&](const KernelSpec& s) { return s.name == req.kernel; });
    if (it == remote_kernels.end()) {
      std::vector<std::string> names;
      for (const auto& s : remote_kernels) names.push_back(s.name);
      return unknown_kernel(req.kernel, std::move(names));
    }
    k.spec = *it;
  }
  return prepare(req, k);
}

}  // namespace zwq
