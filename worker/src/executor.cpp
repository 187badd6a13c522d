#include "executor.hpp"

#include "sigbus_guard.hpp"

namespace zwq::worker {
namespace {

// How far past a slice's end the prefaulter populates: a few chunks (MappedFile::kPrefaultChunk),
// more than a slice of the default size, so it keeps ahead of the compute thread.
constexpr std::size_t kPrefaultAheadBytes = std::size_t{8} << 20;

// a + b and a * b, or empty on uint64 overflow (a hostile job must not wrap around a check).
std::optional<std::uint64_t> add(std::uint64_t a, std::uint64_t b) {
  std::uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
std::optional<std::uint64_t> mul(std::uint64_t a, std::uint64_t b) {
  std::uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

SliceOutcome failed(std::uint64_t slice, std::uint32_t attempt, Error e) {
  SliceOutcome o;
  o.slice = slice;
  o.attempt = attempt;
  o.code = e.code;
  o.message = std::move(e.message);
  return o;
}

std::string describe(const std::string& uri, const std::string& path) {
  return uri == path ? "'" + uri + "'" : "'" + uri + "' (" + path + ")";
}

bool needs_input(KernelShape s) {
  return shape_needs(s).input;
}
bool needs_input2(KernelShape s) {
  return shape_needs(s).input2;
}
bool needs_output(KernelShape s) {
  return shape_needs(s).output;
}

}  // namespace

Executor::Executor(DatasetCache& cache, const KernelRegistry& registry)
    : cache_(cache), registry_(registry) {
  install_sigbus_handler();
}

Result<PreparedJob::Array> Executor::open_array(const char* role, const DatasetRef& ref,
                                                MappedFile::Mode mode) {
  if (!ref.present()) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("the job has no ") + role + " dataset, which its kernel needs");
  }
  if (!in_memory_of(ref, host_name(), memory_id())) {
    return make_error(ErrorCode::kDatasetMissing, std::string(role) + " dataset '" + ref.uri +
                                                      "' is on " + memory_place(ref) +
                                                      ", which this worker (host '" + host_name() +
                                                      "', memory " + memory_id() + ") cannot read");
  }
  const std::size_t size = dtype_size(ref.dtype);
  if (size == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(role) + " dataset '" + ref.uri + "' has no element type");
  }
  if (const std::string why = misaligned(ref); !why.empty()) {
    return make_error(ErrorCode::kInvalidArgument, std::string(role) + " dataset " + why);
  }
  auto path = dataset_path(ref.uri);
  if (!path.ok()) return path.error();
  auto cached = cache_.get(path.value(), mode);
  if (!cached.ok()) {
    return make_error(cached.error().code, std::string(role) + " dataset " +
                                               describe(ref.uri, path.value()) + ": " +
                                               cached.error().message);
  }
  // Read as the file records itself: a client that speaks the protocol directly is held to
  // what the client library's probe checks (the wire's byte offset is where element 0 is).
  const DatasetInfo& record = *cached.value().record;
  if (Status s = check_reading(ref, record, false); !s.ok()) {
    return make_error(s.error().code, std::string(role) + " " + s.error().message);
  }
  return PreparedJob::Array{ref.uri,
                            std::move(path).value(),
                            cached.value().file,
                            ref.dtype,
                            ref.byte_offset,
                            std::min(record.data_end(), cached.value().file->size()),
                            record.recorded_count.has_value()};
}

PreparedJob Executor::prepare(const JobSpec& job) {
  PreparedJob p;
  p.job_ = job;
  p.kernel_ = registry_.find(job.kernel);
  p.prefaulter_ = &prefaulter_;
  if (p.kernel_ == nullptr) {
    p.setup_error_ = make_error(ErrorCode::kUnknownKernel,
                                "this worker has no kernel named '" + job.kernel + "'");
    return p;
  }
  const KernelShape shape = p.kernel_->shape;
  auto open = [&](const char* role, const DatasetRef& ref, MappedFile::Mode mode,
                  std::optional<PreparedJob::Array>& slot) {
    if (p.setup_error_) return;
    auto a = open_array(role, ref, mode);
    if (a.ok()) {
      slot = std::move(a).value();
    } else {
      p.setup_error_ = a.error();
    }
  };
  if (needs_input(shape)) open("input", job.input, MappedFile::Mode::kRead, p.in_);
  if (needs_input2(shape)) open("input2", job.input2, MappedFile::Mode::kRead, p.in2_);
  if (needs_output(shape)) open("output", job.output, MappedFile::Mode::kReadWrite, p.out_);
  // The broker cannot run a plugin's parameter check (it never runs user code): it runs here,
  // once per Tasks message, and its error becomes every slice's outcome.
  if (!p.setup_error_) {
    const DType in = job.input.present() ? job.input.dtype : DType::kNone;
    if (Status v = check_params(*p.kernel_, job.params, in, job.count); !v.ok()) {
      p.setup_error_ = v.error();
    }
  }
  return p;
}

std::vector<SliceOutcome> Executor::execute(const msg::Tasks& tasks) {
  const PreparedJob job = prepare(tasks.job);
  std::vector<SliceOutcome> out;
  for (const SliceRun& run : tasks.runs) {
    for (std::uint32_t i = 0; i < run.count; ++i)
      out.push_back(job.run(run.first_slice + i, run.attempt));
  }
  return out;
}

std::optional<Error> PreparedJob::check_fits(const Array& a, std::uint64_t slice,
                                             std::uint64_t first, std::uint64_t end) const {
  const std::uint64_t have = a.file ? std::min(a.data_end, a.file->size()) : 0;
  const auto need_elems = mul(end, dtype_size(a.dtype));
  const auto need = need_elems ? add(*need_elems, a.byte_offset) : std::nullopt;
  if (need && *need <= have) return std::nullopt;
  return make_error(ErrorCode::kDatasetTooShort,
                    "dataset " + describe(a.uri, a.path) + " holds " + std::to_string(have) +
                        (a.recorded ? " bytes of recorded elements" : " bytes") + " but slice " +
                        std::to_string(slice) + " needs " +
                        (need ? std::to_string(*need) : std::string("more than 2^64")) +
                        " (elements [" + std::to_string(first) + ", " + std::to_string(end) +
                        ") of " + std::string(dtype_name(a.dtype)) + " from byte offset " +
                        std::to_string(a.byte_offset) + ")");
}

SliceOutcome PreparedJob::run(std::uint64_t slice, std::uint32_t attempt) const {
  if (setup_error_) return failed(slice, attempt, *setup_error_);
  if (job_.slice_size == 0) {
    return failed(slice, attempt, make_error(ErrorCode::kInvalidArgument, "slice_size is 0"));
  }
  const auto start = mul(slice, job_.slice_size);
  if (!start || *start >= job_.count) {
    return failed(slice, attempt,
                  make_error(ErrorCode::kOutOfRange,
                             "slice " + std::to_string(slice) + " lies beyond the job's " +
                                 std::to_string(job_.count) + " elements in slices of " +
                                 std::to_string(job_.slice_size)));
  }
  const std::uint64_t stop =
      job_.count - *start <= job_.slice_size ? job_.count : *start + job_.slice_size;
  const auto first = add(job_.first, *start);
  const auto end = add(job_.first, stop);
  if (!first || !end) {
    return failed(slice, attempt,
                  make_error(ErrorCode::kOutOfRange, "the job's element range overflows"));
  }

  SliceContext ctx;
  ctx.slice = slice;
  ctx.first = *first;
  ctx.count = *end - *first;
  ctx.job_first = job_.first;
  ctx.job_count = job_.count;
  ctx.params = &job_.params;
  if (shape_needs(kernel_->shape).param_sets) {
    // The slice's sets are [first, end) of the job's list: first + count was checked against
    // nothing yet, as a hostile job may name more sets than it carries.
    if (*end > job_.param_sets.size()) {
      return failed(
          slice, attempt,
          make_error(ErrorCode::kOutOfRange,
                     "slice " + std::to_string(slice) + " covers parameter sets [" +
                         std::to_string(*first) + ", " + std::to_string(*end) +
                         ") but the job carries " + std::to_string(job_.param_sets.size())));
    }
    ctx.sets = job_.param_sets.data() + *first;
  }
  for (const auto* a : {&in_, &in2_, &out_}) {
    if (!*a) continue;
    if (auto e = check_fits(**a, slice, *first, *end)) return failed(slice, attempt, *e);
  }
  auto element = [&](const Array& a) { return a.byte_offset + *first * dtype_size(a.dtype); };
  for (const auto* a : {&in_, &in2_, &out_}) {
    if (*a) (*a)->file->prefault(element(**a), ctx.count * dtype_size((*a)->dtype));
  }
  // What the next slices read, populated on the prefaulter's thread while this one computes
  // (once a mapping is populated this is a few bit tests).
  if (prefaulter_ != nullptr) {
    std::vector<Prefaulter::Range> next;
    for (const auto* a : {&in_, &in2_, &out_}) {
      if (!*a) continue;
      const std::size_t after = element(**a) + ctx.count * dtype_size((*a)->dtype);
      if (!(*a)->file->prefaulted(after, kPrefaultAheadBytes)) {
        next.push_back({(*a)->file, after, kPrefaultAheadBytes});
      }
    }
    if (!next.empty()) prefaulter_->ahead(std::move(next));
  }
  if (in_) ctx.in = SliceView{in_->file->data() + element(*in_), in_->dtype};
  if (in2_) ctx.in2 = SliceView{in2_->file->data() + element(*in2_), in2_->dtype};
  if (out_) ctx.out = MutableSliceView{out_->file->mutable_data() + element(*out_), out_->dtype};

  SliceOutcome o;
  o.slice = slice;
  o.attempt = attempt;
  Status status;
  const bool completed =
      call_catching_sigbus([&] { status = run_kernel(*kernel_, ctx, o.partial); });
  if (!completed) {
    std::string files;
    for (const auto* a : {&in_, &in2_, &out_}) {
      if (*a) files += (files.empty() ? "" : ", ") + describe((*a)->uri, (*a)->path);
    }
    return failed(slice, attempt,
                  make_error(ErrorCode::kDatasetTooShort,
                             "a dataset file shrank while slice " + std::to_string(slice) +
                                 " was computed (SIGBUS reading " + files + ")"));
  }
  if (!status.ok()) return failed(slice, attempt, status.error());
  return o;
}

}  // namespace zwq::worker
