// The zwq client library: the one header a zwq user includes.
//
//   zwq::LocalCluster cluster({.workers = 8});              // or Client::connect({.broker = ...})
//   auto x = zwq::SharedArray<float>::create("x", n).value();
//   ... fill x ...
//   auto job = cluster.client().submit(zwq::JobRequest::reduce("sum", x)).value();
//   zwq::JobResult r = job.get();                           // throws zwq::JobError on failure
//   for (const zwq::SliceResult& s : job.as_completed()) ...  // per-slice, imap_unordered
//
// Error model (see zwq/status.hpp): calls that talk to the broker return a Result carrying an
// ErrorCode and a message; get() and as_completed() throw JobError instead; LocalCluster throws
// SetupError when it cannot start. Every request has a deadline (ClientOptions::request_timeout):
// a broker that does not answer gives kUnreachable naming its address, never a hang.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "zwq/dataset.hpp"
#include "zwq/kernel.hpp"
#include "zwq/local_cluster.hpp"
#include "zwq/messages.hpp"
#include "zwq/params.hpp"
#include "zwq/partial.hpp"
#include "zwq/shared_array.hpp"
#include "zwq/status.hpp"

namespace zwq {

namespace detail {
class Connection;
}

struct ClientOptions {
  std::string broker;                               // control endpoint; empty = $ZWQ_BROKER
  std::chrono::milliseconds request_timeout{5000};  // per request (plus what a Wait or Fetch asks
                                                    // the broker to hold); then kUnreachable
  int retries = 0;  // extra attempts of a timed-out request, each on a fresh socket (requests are
                    // idempotent: a retried submit reuses its job id); connect() never retries
  // How long Job::wait() and the result stream keep asking a broker that does not answer (it may
  // be restarting: with --journal it finds the job again) before they give kUnreachable; a
  // wait's own timeout still ends it sooner.
  std::chrono::milliseconds outage_tolerance{30000};
  // How long connect() waits for the broker's first answer; none = request_timeout. (`zwq wait
  // --timeout 2` gives up on an unreachable broker within its 2 s.)
  std::optional<std::chrono::milliseconds> connect_timeout;
};

// What to run: a kernel over a range of a dataset (or of integer points, for range kernels).
// Plain data; build it field by field or with the helpers below.
struct JobRequest {
  std::string kernel;       // a kernel name, see `zwq kernels` or KernelRegistry::builtin()
  DatasetRef input;         // reduce, reduce2 and map kernels
  DatasetRef input2;        // reduce2 kernels (e.g. dot); same length as input
  DatasetRef output;        // map kernels; written in place, element e for input element e
  std::uint64_t first = 0;  // first element (or point) of the job
  std::optional<std::uint64_t> count;  // elements or points; default: input length - first;
                                       // required for range kernels
  std::uint64_t slice_size = 0;        // elements per slice; 0 = the broker's default (262144)
  Params params;                       // kernel parameters, e.g. histogram's lo, hi, bins
  std::vector<Params> param_sets;      // params kernels: one independent set per task (starmap);
                                       // the count defaults to their number - first
  std::string job_id;                  // empty = random_job_id(), chosen once by prepare_job()
  bool check_datasets = true;          // probe the files before submitting (see prepare_job)
  // Keep the job on the workers that share this host's memory (keep_here(), zwq submit --here):
  // for a file on this host's local disk, which the broker cannot tell from a shared one. A
  // dataset that names a host already keeps it.
  bool here = false;

  // A one-input reduction ("sum", "min", "mean", "histogram", ...) over all of `in`: a
  // SharedArray, or a DatasetRef naming any file, e.g. DatasetRef{"/shared/x.f32", DType::kF32}
  // on a filesystem that every worker host mounts at that path.
  static JobRequest reduce(std::string kernel, DatasetRef in, Params params = {}) {
    JobRequest r;
    r.kernel = std::move(kernel);
    r.input = std::move(in);
    r.params = std::move(params);
    return r;
  }
  template <typename T>
  static JobRequest reduce(std::string kernel, const SharedArray<T>& in, Params params = {}) {
    return reduce(std::move(kernel), in.ref(), std::move(params));
  }
  // A two-input reduction ("dot") over all of `a` and `b`.
  static JobRequest reduce2(std::string kernel, DatasetRef a, DatasetRef b, Params params = {}) {
    JobRequest r = reduce(std::move(kernel), std::move(a), std::move(params));
    r.input2 = std::move(b);
    return r;
  }
  template <typename T, typename U>
  static JobRequest reduce2(std::string kernel, const SharedArray<T>& a, const SharedArray<U>& b,
                            Params params = {}) {
    return reduce2(std::move(kernel), a.ref(), b.ref(), std::move(params));
  }
  // A map ("affine", "square", ...) from all of `in` into `out`.
  static JobRequest map(std::string kernel, DatasetRef in, DatasetRef out, Params params = {}) {
    JobRequest r = reduce(std::move(kernel), std::move(in), std::move(params));
    r.output = std::move(out);
    return r;
  }
  template <typename T, typename U>
  static JobRequest map(std::string kernel, const SharedArray<T>& in, const SharedArray<U>& out,
                        Params params = {}) {
    return map(std::move(kernel), in.ref(), out.ref(), std::move(params));
  }
  // A range kernel ("pi", "mcpi", "primes") over the points [begin, end), like Python's
  // range(begin, end): empty when end <= begin.
  static JobRequest range(std::string kernel, std::uint64_t begin, std::uint64_t end,
                          Params params = {}) {
    JobRequest r;
    r.kernel = std::move(kernel);
    r.first = begin;
    r.count = end > begin ? end - begin : 0;
    r.params = std::move(params);
    return r;
  }
  // The points [0, count), like Python's range(count).
  static JobRequest range(std::string kernel, std::uint64_t count) {
    return range(std::move(kernel), 0, count);
  }
  // A params kernel over independent parameter sets, one task each (Pool.starmap); `params`
  // are shared by all. `chunk` sets go to a slice (0: one each, or Pool-style via zwq::Pool).
  static JobRequest sets(std::string kernel, std::vector<Params> sets, Params params = {},
                         std::uint64_t chunk = 0) {
    JobRequest r;
    r.kernel = std::move(kernel);
    r.param_sets = std::move(sets);
    r.params = std::move(params);
    r.slice_size = chunk;
    return r;
  }
  // A generate kernel writing all of `out` (e.g. a rendered image).
  static JobRequest generate(std::string kernel, DatasetRef out, Params params = {}) {
    JobRequest r;
    r.kernel = std::move(kernel);
    r.output = std::move(out);
    r.params = std::move(params);
    return r;
  }
  template <typename U>
  static JobRequest generate(std::string kernel, const SharedArray<U>& out, Params params = {}) {
    return generate(std::move(kernel), out.ref(), std::move(params));
  }
  // Sets a parameter and returns *this, for chaining: .with("bins", 64).with("hi", 1.0).
  // Integers travel as int64, floating point as double, anything else as a string.
  template <typename V>
  JobRequest& with(const std::string& name, V value) {
    if constexpr (std::is_same_v<V, ParamValue>) {
      params.set(name, std::move(value));
    } else if constexpr (std::is_integral_v<V>) {
      params.set(name, static_cast<std::int64_t>(value));
    } else if constexpr (std::is_floating_point_v<V>) {
      params.set(name, static_cast<double>(value));
    } else {
      params.set(name, std::string(value));
    }
    return *this;
  }
  // Sets a parameter from "name=value" text (Params::parse_assignment: an integer if the value
  // reads as one, else a float, else a string). Fails (kInvalidArgument) without a '=' or a name.
  Status set_param(const std::string& assignment) {
    auto p = Params::parse_assignment(assignment);
    if (!p.ok()) return p.error();
    params.set(p.value().first, std::move(p.value().second));
    return Status::Ok();
  }
};

// Turns a request into the JobSpec Client::submit sends, without talking to a broker:
//  * the kernel must be a built-in one, or one of `remote_kernels` (the broker's list) -> else
//    kUnknownKernel. A kernel only the broker knows by name skips the shape checks below (the
//    broker makes them); one it describes with a KernelSpec (its shape, combiner and dtypes,
//    InfoRep.kernel_specs) is checked like a built-in one, except for its parameter check;
//  * the job id, when given, must be 1-64 of [A-Za-z0-9._-] -> else kInvalidArgument; an empty
//    one is generated;
//  * the kernel's shape decides which of input, input2, output must be present (missing or
//    superfluous ones -> kInvalidArgument); range kernels need a count (kInvalidArgument);
//  * with check_datasets, each dataset is probed: a missing dtype is taken from its sidecar or
//    .npy header (input2's and output's then default to input's), a .npy's byte_offset defaults to
//    its header length, `length` is filled in, the count defaults to input length - first, and
//    each dataset must hold first + count elements. Failures: kDatasetMissing, kDatasetTooShort,
//    kDtypeMismatch, kOutOfRange (first past the end), kInvalidArgument (no dtype known);
//  * a kernel that insists on a dtype gets datasets of that dtype (kDtypeMismatch otherwise; a raw
//    file without a recorded dtype is taken to be of it);
//  * generate kernels count the output's elements, params kernels the parameter sets; parameter
//    sets given to any other kernel -> kInvalidArgument;
//  * the kernel's own parameter check runs (its error, usually kInvalidArgument).
Result<JobSpec> prepare_job(const JobRequest& request,
                            const std::vector<std::string>& remote_kernels = {});
Result<JobSpec> prepare_job(const JobRequest& request,
                            const std::vector<KernelSpec>& remote_kernels);

// A random job id: kJobIdChars characters of [0-9A-Za-z].
inline constexpr std::size_t kJobIdChars = 15;
std::string random_job_id();

class Job;

namespace detail {
// The input iterator of a stream whose next() gives Result<std::optional<V>> (empty at the end):
// range-for over the stream throws JobError on a failure.
template <typename Stream, typename V>
class StreamIterator {
 public:
  using iterator_concept = std::input_iterator_tag;
  using value_type = V;
  using difference_type = std::ptrdiff_t;
  StreamIterator() = default;
  explicit StreamIterator(Stream* owner) : owner_(owner) { ++*this; }
  const V& operator*() const { return *current_; }
  const V* operator->() const { return &*current_; }
  StreamIterator& operator++() {
    auto r = owner_->next();
    if (!r.ok()) throw JobError(r.error());
    current_ = std::move(r).value();
    return *this;
  }
  void operator++(int) { ++*this; }
  bool operator==(std::default_sentinel_t) const { return !current_; }

 private:
  Stream* owner_ = nullptr;
  std::optional<V> current_;
};
}  // namespace detail

// The per-slice results of a job as an input range, in the order the broker accepted them
// (Pool.imap_unordered): `for (const SliceResult& s : job.as_completed()) ...`. Iterating throws
// JobError when the job fails, is cancelled, the broker cannot be reached or the timeout passes.
// Refers to its Job, which must outlive it; its iterator refers to it (range-for keeps it).
class SliceResults {
 public:
  // The next slice's result; an empty optional after the last.
  Result<std::optional<SliceResult>> next();

  using iterator = detail::StreamIterator<SliceResults, SliceResult>;
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const { return {}; }

 private:
  friend class Job;
  SliceResults(Job* job, std::optional<std::chrono::steady_clock::time_point> deadline)
      : job_(job), deadline_(deadline) {}
  Job* job_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
};

// A submitted job: Pool's AsyncResult. Holds a share of its Client's connection, so it stays
// usable after the Client is moved or destroyed. Not thread-safe (it shares the Client's socket:
// use a Client and its Jobs from one thread). Move-only, because it carries the position of its
// result stream.
//
// Every call below may also fail with kUnreachable (the broker did not answer in time; wait()
// and the result stream first keep asking for ClientOptions::outage_tolerance, so that they
// ride over a broker restart), kBrokerRestarted (the broker restarted without a journal and
// lost the job) or kUnknownJob.
class Job {
 public:
  using ProgressFn = std::function<void(const JobStatus&)>;

  Job(Job&&) noexcept;
  Job& operator=(Job&&) noexcept;
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;
  ~Job();

  const std::string& id() const { return spec_.job_id; }
  // As submitted, after prepare_job; for an attached job (Client::attach), only id and kernel.
  const JobSpec& spec() const { return spec_; }
  std::uint64_t total_slices() const { return total_slices_; }
  std::uint64_t slice_size() const { return slice_size_; }
  // The broker knew this id already: a retry, or an attached job.
  bool existed() const { return existed_; }
  // The status from the last reply about this job (queued, before the first).
  const JobStatus& last_status() const { return status_; }

  // Waits for the result, asking the broker in steps of at most 1 s (200 ms when on_progress is
  // set; on_progress gets the status after each step). Success: the job's result. Failures: the
  // job's own error code and message when it failed, kCancelled when it was cancelled, kTimeout
  // when `timeout` passed (the job keeps running; wait again or cancel()).
  Result<JobResult> wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt,
                         const ProgressFn& on_progress = {});
  // One step of wait(): the result if the job finishes within `max_wait`, an empty optional if it
  // still runs, or if the broker has not answered for less than the outage tolerance. Failures as
  // wait(), except that it never gives kTimeout for the job.
  Result<std::optional<JobResult>> poll(std::chrono::milliseconds max_wait);
  // wait() for those who prefer exceptions (AsyncResult.get()): throws JobError.
  JobResult get(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  // The job's current status (StatusReq).
  Result<JobStatus> progress();
  // Cancels the job (queued slices are dropped); returns its status. A finished job is left as
  // it was and its status returned.
  Result<JobStatus> cancel();

  // The next per-slice result, in the order the broker accepted them; each slice exactly once.
  // Results are fetched in batches and buffered here. An empty optional means the job is done and
  // every result was returned. Failures: the job's error (after every result accepted before it
  // failed was returned), kCancelled, kTimeout when nothing arrived within `timeout`, also while
  // the broker has not answered for less than the outage tolerance (call again).
  Result<std::optional<SliceResult>> next_result(
      std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // next_result() as a range; `timeout` bounds the whole iteration (JobError kTimeout).
  SliceResults as_completed(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

 private:
  friend class Client;
  Job(std::shared_ptr<detail::Connection> conn, JobSpec spec, const msg::SubmitRep& rep);
  Job(std::shared_ptr<detail::Connection> conn, JobSpec spec, const msg::SubmitItem& item);
  // Takes the broker's word on this job (a WaitRep, a waited SubmitRep, a WaitItem): the result
  // when it is done, the job's error when it failed or was cancelled, empty while it runs.
  Result<std::optional<JobResult>> settle(JobStatus status, bool finished, JobResult result);
  Error job_error(const JobStatus& status) const;
  Error lost_job(Error error);
  Status fetch(std::chrono::milliseconds hold);
  // After a failed call: nullopt to ask again (kUnreachable within the outage tolerance and
  // before `deadline`); kTimeout within the tolerance but at `deadline` (the caller may call
  // again: the outage is counted across calls); else the error to give, with its length.
  std::optional<Error> outage(const Error& error,
                              std::optional<std::chrono::steady_clock::time_point> deadline);

  std::shared_ptr<detail::Connection> conn_;
  JobSpec spec_;
  std::uint64_t total_slices_ = 0;
  std::uint64_t slice_size_ = 0;
  bool existed_ = false;
  JobStatus status_;
  // Fetched, not yet returned by next_result: pending_[pending_head_...]. A vector, since a
  // deque allocates its first block (512 bytes) with every Job, streamed or not.
  std::vector<SliceResult> pending_;
  std::size_t pending_head_ = 0;
  std::uint64_t cursor_ = 0;  // the broker's position in the result stream
  bool drained_ = false;      // a fetch saw a final state and brought nothing new
  std::vector<bool> seen_;    // slices returned already: after an outage the stream is
                              // read again from 0 (a restarted broker's order differs)
  std::optional<std::chrono::steady_clock::time_point> down_since_;  // first unanswered call
};

// A connection to a zwq broker's control endpoint: submit jobs, ask about jobs and workers.
// Not thread-safe: use one Client per thread (each has its own ZeroMQ context and socket, so
// keep a few long-lived ones rather than one per request). Move-only. Jobs it returns share its
// connection and remain valid after it is gone.
class Client {
 public:
  // Connects to options.broker (or $ZWQ_BROKER) and asks the broker for its InfoRep. Fails with
  // kInvalidArgument when no address is given or it is malformed, kUnreachable ("no reply from
  // broker at ADDR within N ms") when nothing answers within request_timeout, kVersionMismatch
  // when the broker speaks another protocol version.
  static Result<Client> connect(ClientOptions options = {});

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // prepare_job() (with the broker's kernel list), then SubmitReq. Success: a Job handle (also
  // when the id was known already: Job::existed()). Failures: prepare_job's, and the broker's
  // refusal (kUnknownKernel, kInvalidArgument, kOutOfRange, kShuttingDown, ...).
  Result<Job> submit(const JobRequest& request);
  // submit() then Job::wait(timeout): Pool.apply for one whole job. A job that finishes within
  // a second costs one round trip: the broker holds the SubmitRep until the job is final
  // (SubmitReq.wait_ms); a longer one goes on with Job::wait().
  Result<JobResult> run(const JobRequest& request,
                        std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  // Submits many jobs in few round trips: one SubmitManyReq per 512 jobs, the next one sent while
  // the broker works on the last.
  // One Result per request, in order: each job is prepared, accepted or refused on its own, as
  // submit() would (one bad job does not affect the others); when the broker cannot be reached
  // the jobs of the unanswered request get kUnreachable. A retried request reuses its job ids, so
  // no job runs twice. The broker remembers only its latest finished jobs
  // (BrokerOptions::max_finished_jobs, 10000): wait for a batch before submitting many more, or
  // use run_many().
  std::vector<Result<Job>> submit_many(const std::vector<JobRequest>& requests);
  // Waits for all of `jobs` in few round trips (WaitManyReq): the result of each, in order, or
  // its error as Job::wait() gives it (the job's own error, kCancelled, kTimeout when `timeout`
  // passed first, kUnreachable after ClientOptions::outage_tolerance, kUnknownJob or
  // kBrokerRestarted). Each Job's last_status() is updated.
  std::vector<Result<JobResult>> wait_all(
      std::span<Job> jobs, std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // Runs many independent jobs (Pool.map of whole jobs, or apply_async then get on each):
  // submit_many() and wait_all() in windows, the next two windows submitted before one is
  // waited for (one, for windows over 2730 jobs), so that the workers never wait for the client.
  // One Result per request, in order; `timeout` bounds the wait for each window.
  std::vector<Result<JobResult>> run_many(
      const std::vector<JobRequest>& requests,
      std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // The jobs per window run_many() uses with `workers` registered workers: 512 per worker, at
  // least 128 and at most 4096 (small windows keep the broker's turns short; it asks for the
  // worker count once per call).
  static std::size_t run_many_window(std::size_t workers);
  // The windows run_many() submits ahead of the one it collects, for windows of `window` jobs:
  // 2, or 1 where three windows would hold more than 8192 jobs (the broker remembers 10000
  // finished jobs by default, and a window's jobs must still be known when it is collected).
  static std::size_t run_many_ahead(std::size_t window);

  // Status of one job (kUnknownJob if there is none), or of all jobs the broker knows (empty id).
  Result<std::vector<JobStatus>> status(const std::string& job_id = "");
  // A handle on a job submitted before, by this client or another (`zwq wait JOB`): wait for
  // it, stream its results, cancel it. Its spec() holds only the id and kernel, and its
  // slice_size() is 0: the broker reports neither the rest of the spec nor the slice size.
  // Fails with kUnknownJob when the broker does not know the id (or forgot it, finished). The
  // results of a finished job stream only while the broker keeps them
  // (BrokerOptions::max_finished_slices).
  Result<Job> attach(const std::string& job_id);
  // The registered workers.
  Result<std::vector<WorkerStatus>> workers();
  // Cancels a job by id; see Job::cancel().
  Result<JobStatus> cancel(const std::string& job_id);
  // Asks the broker to stop (it tells its workers to exit). OK once the broker acknowledged.
  Status shutdown_broker();

  // The JobSpec that submit() would send for `request`, nothing sent but (for a kernel the broker
  // did not list when we connected) one InfoReq: prepare_job() with the broker's kernels. Its
  // failures are submit()'s before sending.
  Result<JobSpec> prepare(const JobRequest& request);
  // What the broker said when we connected: version, epoch, endpoints, kernels, ...
  const msg::InfoRep& info() const;
  // The control endpoint this client talks to.
  const std::string& address() const;

 private:
  explicit Client(std::shared_ptr<detail::Connection> conn) : conn_(std::move(conn)) {}
  // One WaitManyReq round over `pending` (indices into `jobs`): settles the jobs it answers
  // into `out` and removes them from `pending`. post_wait_round() sends it and
  // finish_wait_round() takes its reply, so that the client may do other work in between.
  struct WaitRound;
  Status wait_round(std::span<Job> jobs, std::vector<std::size_t>& pending,
                    std::chrono::milliseconds hold,
                    std::vector<std::optional<Result<JobResult>>>& out);
  WaitRound post_wait_round(std::span<Job> jobs, const std::vector<std::size_t>& pending,
                            std::chrono::milliseconds hold);
  Status finish_wait_round(WaitRound& round, std::span<Job> jobs, std::vector<std::size_t>& pending,
                           std::vector<std::optional<Result<JobResult>>>& out);
  // wait_all(), its first round already posted (`first`, may be null).
  std::vector<Result<JobResult>> wait_all_from(WaitRound* first, std::span<Job> jobs,
                                               std::optional<std::chrono::milliseconds> timeout);
  std::shared_ptr<detail::Connection> conn_;
};

}  // namespace zwq

// The multiprocessing.Pool-style API (map, starmap, apply_async, imap_unordered) on top.
#include "zwq/pool.hpp"
