// zwq::Pool: multiprocessing.Pool's API over a zwq broker (included by zwq/client.hpp).
//
//   zwq::Pool pool({.workers = 4});                            // with Pool(4) as pool:
//   pool.map("cube", x, y);                                    // pool.map(f, x) into y
//   auto norms = pool.starmap<double>("poisson", sets);        // pool.starmap(f, sets)
//   auto r = pool.apply_async<double>("poisson", sets[2]).value();  // one task
//   double v = r.get();                                        // AsyncResult.get()
//   auto stream = pool.imap_unordered<double>("poisson", sets).value();
//   for (const auto& [index, norm] : stream) ...               // as each chunk completes
//   auto ordered = pool.imap<double>("poisson", sets).value();
//   for (double norm : ordered) ...                           // in task order
//
// Tasks are kernels (built in, or plugins the workers loaded; see docs/PLUGINS.md), not
// closures: a map runs a kernel over a shared array, a starmap runs a `params` kernel once per
// parameter set. Per-task results come back through the `gather` combiner as msgpack values, one
// per task, in task order; numeric combiners (sum, min, ...) give one merged JobResult instead.
//
// chunksize (PoolOptions) is the number of elements or tasks per slice; 0 picks Pool's default,
// ceil(n / (4 * workers)) (for an array in this host's memory, or with PoolOptions::here, this
// host's workers).
//
// Error model: as Client's. Calls return a Result; AsyncResult::get() and iterating an
// Unordered or an Ordered throw JobError. Thread safety: none; a Pool and its results belong to one
// thread (like the Client under it). Move-only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "zwq/client.hpp"
#include "zwq/local_cluster.hpp"

namespace zwq {

// Pool's default chunksize: ceil(n / (4 * workers)), at least 1.
std::uint64_t auto_chunksize(std::uint64_t n, std::uint64_t workers);

// Options of one Pool call.
struct PoolOptions {
  std::uint64_t chunksize = 0;  // elements or tasks per slice; 0 = auto_chunksize
  // Bound on the blocking calls (map, starmap, apply); none = wait as long as it takes.
  std::optional<std::chrono::milliseconds> timeout;
  // JobRequest::here for the call's job: keep it on this host's workers (a file on this host's
  // local disk).
  bool here = false;
};

// The msgpack values packed one after another in `bytes` (a gathered slice), converted to T.
// Fails (kInvalidArgument) on bytes that are not msgpack or a value that is not a T.
template <typename T>
Result<std::vector<T>> unpack_values(std::string_view bytes) {
  std::vector<T> out;
  std::size_t offset = 0;
  try {
    while (offset < bytes.size()) {
      msgpack::object_handle h = msgpack::unpack(bytes.data(), bytes.size(), offset);
      out.push_back(h.get().as<T>());
    }
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, "gathered result " + std::to_string(out.size()) +
                                                       " cannot be read as the requested type (" +
                                                       e.what() + ")");
  }
  return out;
}

// Every slice's values, in slice order (JobResult::gathered of a gather job).
template <typename T>
Result<std::vector<T>> unpack_gathered(const std::vector<std::string>& slices) {
  std::vector<T> out;
  for (const std::string& bytes : slices) {
    auto values = unpack_values<T>(bytes);
    if (!values.ok()) return values.error();
    for (auto& v : values.value()) out.push_back(std::move(v));
  }
  return out;
}

// Pool.apply_async's AsyncResult: a submitted job and how to turn its JobResult into a T.
// Move-only; refers to nothing but its own Job.
template <typename T>
class AsyncResult {
 public:
  using Convert = std::function<Result<T>(JobResult&&)>;
  AsyncResult(Job job, Convert convert) : job_(std::move(job)), convert_(std::move(convert)) {}

  // True once the job is finished (done, failed or cancelled); asks the broker without waiting.
  bool ready() {
    if (outcome_) return true;
    auto r = job_.poll(std::chrono::milliseconds(0));
    if (r.ok() && !r.value()) return false;
    settle(std::move(r));
    return true;
  }
  // Waits until the job is finished or `timeout` passed. OK: finished (successfully or not);
  // kTimeout: still running; kUnreachable and friends: the broker did not answer.
  Status wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    if (outcome_) return Status::Ok();
    auto r = job_.wait(timeout);
    if (!r.ok() &&
        (r.error().code == ErrorCode::kTimeout || r.error().code == ErrorCode::kUnreachable)) {
      return r.error();
    }
    outcome_ = r.ok() ? convert_(std::move(r).value()) : Result<T>(r.error());
    return Status::Ok();
  }
  // The value, or why there is none (the job's error, kCancelled, kTimeout, ...).
  Result<T> result(std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    if (Status s = wait(timeout); !s.ok()) return s.error();
    return *outcome_;
  }
  // result() for those who prefer exceptions (AsyncResult.get()): throws JobError.
  T get(std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    auto r = result(timeout);
    if (!r.ok()) throw JobError(r.error());
    return std::move(r).value();
  }
  // True once ready() and the job succeeded.
  bool successful() { return ready() && outcome_->ok(); }
  // Cancels the job (Job::cancel()).
  Result<JobStatus> cancel() { return job_.cancel(); }
  Job& job() { return job_; }

 private:
  void settle(Result<std::optional<JobResult>> r) {
    if (!r.ok()) {
      outcome_ = Result<T>(r.error());
    } else {
      outcome_ = convert_(std::move(*r.value()));
    }
  }

  Job job_;
  Convert convert_;
  std::optional<Result<T>> outcome_;
};

// A streamed chunk's values, one per task: `s.count` of them, or kInvalidArgument (a kernel that
// gathered another number of values per task would mislabel every task after).
template <typename T>
Result<std::vector<T>> chunk_values(const SliceResult& s) {
  auto values = unpack_values<T>(s.partial.bytes);
  if (values.ok() && values.value().size() != s.count) {
    return make_error(ErrorCode::kInvalidArgument,
                      "slice " + std::to_string(s.slice) + " of " + std::to_string(s.count) +
                          " tasks returned " + std::to_string(values.value().size()) + " values");
  }
  return values;
}

// Pool.imap_unordered over parameter sets: (task index, value) pairs as their slices complete.
// next() returns an empty optional once every task was returned. Iterating with range-for
// (begin() once) throws JobError on a failure, like Job::as_completed().
template <typename T>
class Unordered {
 public:
  using Item = std::pair<std::uint64_t, T>;
  explicit Unordered(Job job, std::optional<std::chrono::milliseconds> timeout = std::nullopt)
      : job_(std::move(job)), timeout_(timeout) {}

  Result<std::optional<Item>> next() {
    while (taken_ == buffer_.size()) {
      auto s = job_.next_result(timeout_);
      if (!s.ok()) return s.error();
      if (!s.value()) return std::optional<Item>();
      auto values = chunk_values<T>(*s.value());
      if (!values.ok()) return values.error();
      buffer_.clear();
      taken_ = 0;
      for (std::size_t i = 0; i < values.value().size(); ++i) {
        buffer_.emplace_back(s.value()->first + i, std::move(values.value()[i]));
      }
    }
    return std::optional<Item>(std::move(buffer_[taken_++]));
  }
  Job& job() { return job_; }

  using iterator = detail::StreamIterator<Unordered, Item>;
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const { return {}; }

 private:
  Job job_;
  std::optional<std::chrono::milliseconds> timeout_;
  std::vector<Item> buffer_;  // the last chunk's items; buffer_[taken_..] are still to give
  std::size_t taken_ = 0;
};

// Pool.imap over parameter sets: the tasks' values in task order, each as soon as its chunk and
// every chunk before it are back (chunks that come back early wait, by slice number). next()
// returns an empty optional after the last task. Iterating with range-for (begin() once) throws
// JobError on a failure.
template <typename T>
class Ordered {
 public:
  explicit Ordered(Job job, std::optional<std::chrono::milliseconds> timeout = std::nullopt)
      : job_(std::move(job)), timeout_(timeout) {}

  Result<std::optional<T>> next() {
    while (taken_ == chunk_.size()) {
      if (auto it = early_.find(next_slice_); it != early_.end()) {
        chunk_ = std::move(it->second);
        early_.erase(it);
      } else {
        auto s = job_.next_result(timeout_);
        if (!s.ok()) return s.error();
        if (!s.value()) {
          if (early_.empty()) return std::optional<T>();
          return make_error(ErrorCode::kInternal, "slice " + std::to_string(next_slice_) +
                                                      " never came back, while later ones did");
        }
        auto values = chunk_values<T>(*s.value());
        if (!values.ok()) return values.error();
        if (s.value()->slice != next_slice_) {
          early_.emplace(s.value()->slice, std::move(values).value());
          continue;
        }
        chunk_ = std::move(values).value();
      }
      taken_ = 0;
      ++next_slice_;
    }
    return std::optional<T>(std::move(chunk_[taken_++]));
  }
  Job& job() { return job_; }

  using iterator = detail::StreamIterator<Ordered, T>;
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const { return {}; }

 private:
  Job job_;
  std::optional<std::chrono::milliseconds> timeout_;
  std::uint64_t next_slice_ = 0;  // the chunk to give after chunk_
  std::vector<T> chunk_;          // chunk_[taken_..] are still to give
  std::size_t taken_ = 0;
  std::map<std::uint64_t, std::vector<T>> early_;  // chunks back before their turn
};

class Pool {
 public:
  // Starts a broker and options.workers workers on this machine for the Pool's lifetime
  // (`with Pool(n) as pool`). Throws SetupError when they cannot be started (LocalCluster).
  explicit Pool(LocalClusterOptions options = {});
  // A Pool over a broker that is already running (ClientOptions::broker or $ZWQ_BROKER).
  static Result<Pool> connect(ClientOptions options = {});
  Pool(Pool&&) noexcept;
  Pool& operator=(Pool&&) noexcept;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool();

  Client& client();
  // The local cluster this Pool started, or nullptr for a connected one.
  LocalCluster* cluster();
  // Live workers the broker knows now (at least 1): the base of the automatic chunksize.
  std::uint64_t workers();
  // Live workers that can read `where` (at least 1): for an array in this host's /dev/shm, those
  // that see the same /dev/shm, as the broker routes a job over it (zwq/placement.hpp); for a
  // file on a shared filesystem, all of them. The automatic chunksize counts those that can read
  // all of a job's datasets.
  std::uint64_t workers(const DatasetRef& where);

  // Submits `request` with the chunksize applied (its slice_size when it sets one, else
  // options.chunksize, else auto_chunksize over its elements or tasks): Pool.map_async for any
  // job. The AsyncResult gives the whole JobResult.
  Result<AsyncResult<JobResult>> submit(JobRequest request, const PoolOptions& options = {});
  // Submits `request` like submit() and returns its Job, whose as_completed() streams the
  // per-slice results as they are accepted (Pool.imap_unordered over slices).
  Result<Job> imap_unordered(JobRequest request, const PoolOptions& options = {});

  // Pool.map: the map kernel over all of `in`, written into `out` (same length), blocking.
  // Success: the job's result (for built-in maps, value = elements written).
  template <typename T, typename U>
  Result<JobResult> map(const std::string& kernel, const SharedArray<T>& in,
                        const SharedArray<U>& out, Params params = {},
                        const PoolOptions& options = {}) {
    return run(JobRequest::map(kernel, in, out, std::move(params)), options);
  }
  template <typename T, typename U>
  Result<AsyncResult<JobResult>> map_async(const std::string& kernel, const SharedArray<T>& in,
                                           const SharedArray<U>& out, Params params = {},
                                           const PoolOptions& options = {}) {
    return submit(JobRequest::map(kernel, in, out, std::move(params)), options);
  }

  // Pool.apply_async: one task of a params kernel with `args`. T is what the kernel returns
  // (gather kernels), or for a numeric combiner the job's value converted to T.
  template <typename T = double>
  Result<AsyncResult<T>> apply_async(const std::string& kernel, Params args) {
    auto job = submit_job(JobRequest::sets(kernel, {std::move(args)}, {}, 1), {});
    if (!job.ok()) return job.error();
    return AsyncResult<T>(std::move(job).value(), [](JobResult&& r) -> Result<T> {
      if (r.merged.combiner != Combiner::kGather) {
        if constexpr (std::is_arithmetic_v<T>) {
          return static_cast<T>(r.value);
        } else {
          return make_error(ErrorCode::kInvalidArgument,
                            "the kernel merges its results (combiner " +
                                std::string(combiner_name(r.merged.combiner)) +
                                "): ask for a number");
        }
      }
      auto values = unpack_gathered<T>(r.gathered);
      if (!values.ok()) return values.error();
      if (values.value().size() != 1) {
        return make_error(
            ErrorCode::kInvalidArgument,
            "one task returned " + std::to_string(values.value().size()) + " values, not 1");
      }
      return std::move(values.value().front());
    });
  }
  // Pool.apply: apply_async() then get(), without exceptions.
  template <typename T = double>
  Result<T> apply(const std::string& kernel, Params args,
                  std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    auto r = apply_async<T>(kernel, std::move(args));
    if (!r.ok()) return r.error();
    return r.value().result(timeout);
  }

  // Pool.starmap_async: one task of the params kernel per set; the result lists each task's
  // value in set order. The kernel must gather (kInvalidArgument otherwise, or when a task did
  // not return exactly one value).
  template <typename T = double>
  Result<AsyncResult<std::vector<T>>> starmap_async(const std::string& kernel,
                                                    std::vector<Params> sets,
                                                    const PoolOptions& options = {},
                                                    Params shared = {}) {
    const std::uint64_t tasks = sets.size();
    auto job = submit_job(JobRequest::sets(kernel, std::move(sets), std::move(shared)), options);
    if (!job.ok()) return job.error();
    return AsyncResult<std::vector<T>>(
        std::move(job).value(), [tasks](JobResult&& r) -> Result<std::vector<T>> {
          if (r.merged.combiner != Combiner::kGather) {
            return make_error(ErrorCode::kInvalidArgument,
                              "the kernel merges its results (combiner " +
                                  std::string(combiner_name(r.merged.combiner)) +
                                  "); starmap needs one that gathers: use submit()");
          }
          auto values = unpack_gathered<T>(r.gathered);
          if (!values.ok()) return values.error();
          if (values.value().size() != tasks) {
            return make_error(ErrorCode::kInvalidArgument,
                              std::to_string(tasks) + " tasks returned " +
                                  std::to_string(values.value().size()) + " values");
          }
          return std::move(values).value();
        });
  }
  // Pool.starmap: starmap_async() then wait up to options.timeout.
  template <typename T = double>
  Result<std::vector<T>> starmap(const std::string& kernel, std::vector<Params> sets,
                                 const PoolOptions& options = {}, Params shared = {}) {
    auto r = starmap_async<T>(kernel, std::move(sets), options, std::move(shared));
    if (!r.ok()) return r.error();
    return r.value().result(options.timeout);
  }
  // Pool.imap_unordered over parameter sets: (task index, value) as chunks complete.
  // options.timeout bounds the wait for each next result.
  template <typename T = double>
  Result<Unordered<T>> imap_unordered(const std::string& kernel, std::vector<Params> sets,
                                      const PoolOptions& options = {}, Params shared = {}) {
    auto job = submit_job(JobRequest::sets(kernel, std::move(sets), std::move(shared)), options);
    if (!job.ok()) return job.error();
    return Unordered<T>(std::move(job).value(), options.timeout);
  }
  // Pool.imap over parameter sets: the values in task order, as soon as each is back with all
  // before it. options.timeout bounds the wait for each next chunk.
  template <typename T = double>
  Result<Ordered<T>> imap(const std::string& kernel, std::vector<Params> sets,
                          const PoolOptions& options = {}, Params shared = {}) {
    auto job = submit_job(JobRequest::sets(kernel, std::move(sets), std::move(shared)), options);
    if (!job.ok()) return job.error();
    return Ordered<T>(std::move(job).value(), options.timeout);
  }

 private:
  struct Connected {};
  explicit Pool(Connected) {}
  // Live workers that can read every dataset of `spec`, stamped (at least 1).
  std::uint64_t readers(const JobSpec& spec);
  Result<Job> submit_job(JobRequest request, const PoolOptions& options);
  Result<JobResult> run(JobRequest request, const PoolOptions& options);

  std::optional<LocalCluster> cluster_;
  std::optional<Client> client_;  // a connected Pool's own client
};

}  // namespace zwq
