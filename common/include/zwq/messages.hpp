// Every zwq message, as a plain struct, with its msgpack field list. The meaning of each field is
// in docs/PROTOCOL.md; encode/decode live in zwq/codec.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "zwq/dataset.hpp"
#include "zwq/kernel_spec.hpp"
#include "zwq/msgpack_adaptors.hpp"
#include "zwq/msgpack_map.hpp"
#include "zwq/params.hpp"
#include "zwq/partial.hpp"
#include "zwq/placement.hpp"
#include "zwq/protocol.hpp"

namespace zwq {
enum class JobState : std::uint8_t { kQueued = 1, kRunning = 2, kDone = 3, kFailed = 4, kCancelled = 5 };
std::string_view job_state_name(JobState s);
inline bool job_state_final(JobState s) { return s >= JobState::kDone; }
}  // namespace zwq
MSGPACK_ADD_ENUM(zwq::JobState);

namespace zwq {

// What to compute: the kernel, its datasets and the element (or point) range, cut into slices.
struct JobSpec {
  std::string job_id;             // chosen by the client; a retried submit reuses it
  std::string kernel;             // a registered kernel name
  DatasetRef input;               // kReduce, kReduce2, kMap
  DatasetRef input2;              // kReduce2
  DatasetRef output;              // kMap
  std::uint64_t first = 0;        // first element (or range point) of the job
  std::uint64_t count = 0;        // elements (or range points) in the job
  std::uint64_t slice_size = 0;   // elements per slice; 0 = the broker's default
  Params params;
  // kParams kernels: the independent parameter sets; the job covers sets [first, first + count)
  // and a slice is a run of slice_size of them (Pool.starmap's chunksize).
  std::vector<Params> param_sets;
  bool operator==(const JobSpec&) const = default;
  ZWQ_DEFINE_MAP(job_id, kernel, input, input2, output, first, count, slice_size, params,
                     param_sets)
};

// The first of the job's datasets that is in one host's memory (DatasetRef::host names the
// host), or null when none is. The broker refuses a job whose datasets name two hosts.
inline const DatasetRef* hosted_dataset(const JobSpec& spec) {
  for (const DatasetRef* d : {&spec.input, &spec.input2, &spec.output}) {
    if (!d->host.empty()) return d;
  }
  return nullptr;
}

// Whether a worker whose Hello says `host` and `memory` can read every dataset of the job.
inline bool readable_by(const JobSpec& spec, const std::string& host, const std::string& memory) {
  for (const DatasetRef* d : {&spec.input, &spec.input2, &spec.output}) {
    if (!in_memory_of(*d, host, memory)) return false;
  }
  return true;
}

struct JobStatus {
  std::string job_id;
  std::string kernel;
  JobState state = JobState::kQueued;
  std::uint64_t total = 0;      // slices in the job
  std::uint64_t done = 0;       // slices covered exactly once
  std::uint64_t inflight = 0;   // slices leased to workers now
  std::uint64_t retried = 0;    // slices handed out again after a worker was lost
  std::uint64_t discarded = 0;  // results dropped as duplicates or stale attempts
  std::uint64_t elapsed_ms = 0; // since submit (until finished, for finished jobs)
  ErrorCode error_code = ErrorCode::kOk;
  std::string error;            // why the job failed or was cancelled
  std::uint64_t lease_ms = 0;   // how long a worker may hold its slices without a result now
  // Why no worker takes its slices ("" when one could, or the job is final or has none left).
  std::string waiting;
  // For a job with slices to hand out, none in flight and a worker that could take them: how
  // many older jobs go first (the fewest that any of those workers serves before it). Else 0.
  std::uint64_t ahead = 0;
  ZWQ_DEFINE_MAP(job_id, kernel, state, total, done, inflight, retried, discarded, elapsed_ms,
                 error_code, error, lease_ms, waiting, ahead)
};

struct WorkerStatus {
  std::string worker_id;
  std::string host;
  std::string memory;  // its memory_id(): the /dev/shm it reads ("" if unknown)
  std::uint32_t pid = 0;
  std::string state;            // "idle", "busy", "dead"
  std::uint32_t credit = 0;     // slices it may hold at once
  std::uint64_t inflight = 0;   // slices it holds now
  std::uint64_t slices_done = 0;
  std::uint64_t heartbeat_age_ms = 0;
  ZWQ_DEFINE_MAP(worker_id, host, memory, pid, state, credit, inflight, slices_done,
                 heartbeat_age_ms)
};

// One slice's partial, as streamed to clients (imap_unordered).
struct SliceResult {
  std::uint64_t slice = 0;
  std::uint64_t first = 0;
  std::uint64_t count = 0;
  Partial partial;
  ZWQ_DEFINE_MAP(slice, first, count, partial)
};

// A contiguous run of slices handed to one worker in one attempt.
struct SliceRun {
  std::uint64_t first_slice = 0;
  std::uint32_t count = 0;
  std::uint32_t attempt = 0;
  bool operator==(const SliceRun&) const = default;
  MSGPACK_DEFINE(first_slice, count, attempt)
};

// One slice's outcome from a worker: a partial, or an error.
struct SliceOutcome {
  std::uint64_t slice = 0;
  std::uint32_t attempt = 0;
  ErrorCode code = ErrorCode::kOk;
  std::string message;
  Partial partial;
  MSGPACK_DEFINE(slice, attempt, code, message, partial)
};

namespace msg {
using proto::MsgType;

// ---- control: client -> broker ----
struct InfoReq { static constexpr MsgType kType = MsgType::kInfoReq; int unused = 0; ZWQ_DEFINE_MAP(unused) };
struct SubmitReq {
  static constexpr MsgType kType = MsgType::kSubmitReq;
  JobSpec job;
  std::uint32_t wait_ms = 0;  // hold the reply until the job is final, up to this long; 0 = now
  ZWQ_DEFINE_MAP(job, wait_ms)
};
// Many jobs in one request; each is accepted or refused on its own (SubmitManyRep.items).
struct SubmitManyReq {
  static constexpr MsgType kType = MsgType::kSubmitManyReq;
  std::vector<JobSpec> jobs;  // at most proto::kMaxBatchJobs
  ZWQ_DEFINE_MAP(jobs)
};
// Waits for many jobs at once: answered when min_finished of them are final, or at timeout_ms.
struct WaitManyReq {
  static constexpr MsgType kType = MsgType::kWaitManyReq;
  std::vector<std::string> job_ids;  // at most proto::kMaxBatchJobs
  std::uint32_t timeout_ms = 0;      // how long the broker may hold the reply; 0 = answer now
  std::uint32_t min_finished = 0;    // final jobs that make the reply due; 0 = all listed
  ZWQ_DEFINE_MAP(job_ids, timeout_ms, min_finished)
};
struct StatusReq { static constexpr MsgType kType = MsgType::kStatusReq; std::string job_id; ZWQ_DEFINE_MAP(job_id) };
struct WaitReq {
  static constexpr MsgType kType = MsgType::kWaitReq;
  std::string job_id;
  std::uint32_t timeout_ms = 0;  // how long the broker may hold the reply; 0 = answer now
  ZWQ_DEFINE_MAP(job_id, timeout_ms)
};
struct FetchReq {
  static constexpr MsgType kType = MsgType::kFetchReq;
  std::string job_id;
  std::uint64_t cursor = 0;      // results already seen, in completion order
  std::uint32_t max_items = 0;   // 0 = the broker's limit
  std::uint32_t timeout_ms = 0;  // hold the reply up to this long when nothing is new
  ZWQ_DEFINE_MAP(job_id, cursor, max_items, timeout_ms)
};
struct CancelReq { static constexpr MsgType kType = MsgType::kCancelReq; std::string job_id; ZWQ_DEFINE_MAP(job_id) };
struct WorkersReq { static constexpr MsgType kType = MsgType::kWorkersReq; int unused = 0; ZWQ_DEFINE_MAP(unused) };
struct ShutdownReq { static constexpr MsgType kType = MsgType::kShutdownReq; int unused = 0; ZWQ_DEFINE_MAP(unused) };

// ---- control: broker -> client ----
struct InfoRep {
  static constexpr MsgType kType = MsgType::kInfoRep;
  std::uint32_t version = proto::kVersion;
  std::uint64_t epoch = 0;  // random per broker start; changes on restart
  std::string control, tasks, results, events;
  std::string host;
  std::uint32_t pid = 0;
  std::uint32_t heartbeat_ms = 0;
  std::uint32_t liveness = 0;
  std::vector<std::string> kernels;
  // The same kernels with their shape, combiner and dtypes (built-in ones and those live
  // workers announced); empty from a broker that predates the field.
  std::vector<KernelSpec> kernel_specs;
  ZWQ_DEFINE_MAP(version, epoch, control, tasks, results, events, host, pid, heartbeat_ms,
                     liveness, kernels, kernel_specs)
};
struct SubmitRep {
  static constexpr MsgType kType = MsgType::kSubmitRep;
  std::string job_id;
  std::uint64_t total_slices = 0;
  std::uint64_t slice_size = 0;
  bool existed = false;  // the job id was known: this was a retry, nothing new runs
  // Only for a SubmitReq with wait_ms > 0, as in WaitRep: whether the job was final when the
  // broker answered, its status, and its result when done.
  bool finished = false;
  JobStatus status;
  JobResult result;
  ZWQ_DEFINE_MAP(job_id, total_slices, slice_size, existed, finished, status, result)
};
// One job of a SubmitManyReq: accepted (code kOk, as a SubmitRep would say) or refused.
struct SubmitItem {
  std::string job_id;
  ErrorCode code = ErrorCode::kOk;  // why the job was refused; kOk = accepted
  std::string message;
  std::uint64_t total_slices = 0;
  std::uint64_t slice_size = 0;
  bool existed = false;
  ZWQ_DEFINE_MAP(job_id, code, message, total_slices, slice_size, existed)
};
struct SubmitManyRep {
  static constexpr MsgType kType = MsgType::kSubmitManyRep;
  std::vector<SubmitItem> items;  // one per submitted job, in the same order
  ZWQ_DEFINE_MAP(items)
};
// One job of a WaitManyReq that is final (or unknown: code kUnknownJob).
struct WaitItem {
  std::string job_id;
  ErrorCode code = ErrorCode::kOk;
  std::string message;
  JobStatus status;
  JobResult result;  // when status.state is kDone
  ZWQ_DEFINE_MAP(job_id, code, message, status, result)
};
struct WaitManyRep {
  static constexpr MsgType kType = MsgType::kWaitManyRep;
  std::vector<WaitItem> items;  // the listed jobs that are final or unknown
  std::uint64_t left = 0;       // listed jobs not in items (still running, or left for the next)
  ZWQ_DEFINE_MAP(items, left)
};
struct StatusRep { static constexpr MsgType kType = MsgType::kStatusRep; std::vector<JobStatus> jobs; ZWQ_DEFINE_MAP(jobs) };
struct WaitRep {
  static constexpr MsgType kType = MsgType::kWaitRep;
  JobStatus status;
  bool finished = false;  // status.state is final; result is set when it is kDone
  JobResult result;
  ZWQ_DEFINE_MAP(status, finished, result)
};
struct FetchRep {
  static constexpr MsgType kType = MsgType::kFetchRep;
  std::uint64_t cursor = 0;  // pass back to get the next items
  std::vector<SliceResult> items;
  JobStatus status;
  ZWQ_DEFINE_MAP(cursor, items, status)
};
struct CancelRep { static constexpr MsgType kType = MsgType::kCancelRep; JobStatus status; ZWQ_DEFINE_MAP(status) };
struct WorkersRep { static constexpr MsgType kType = MsgType::kWorkersRep; std::vector<WorkerStatus> workers; ZWQ_DEFINE_MAP(workers) };
struct ShutdownRep { static constexpr MsgType kType = MsgType::kShutdownRep; int unused = 0; ZWQ_DEFINE_MAP(unused) };
struct ErrorRep {
  static constexpr MsgType kType = MsgType::kErrorRep;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  ZWQ_DEFINE_MAP(code, message)
};

// ---- tasks: worker <-> broker ----
struct Hello {
  static constexpr MsgType kType = MsgType::kHello;
  std::string worker_id;  // also the worker's ZMQ routing id
  std::string host;
  std::string memory;  // its memory_id(): which /dev/shm it reads; "" from an older worker
  std::uint32_t pid = 0;
  std::uint32_t credit = 0;  // slices it may hold at once (>= 1)
  std::vector<std::string> kernels;
  // Every kernel it offers with its shape and combiner, so that the broker can validate, route
  // and merge a plugin's kernel without loading it. Empty from an older worker.
  std::vector<KernelSpec> kernel_specs;
  // It takes several Tasks in one message, a frame each (docs/PROTOCOL.md). False from an older
  // worker, which the broker then sends one Tasks per message.
  bool tasks_frames = false;
  // It takes Tasks that name their job by `ref` instead of carrying it (docs/PROTOCOL.md). False
  // from an older worker, which the broker then sends the whole JobSpec in every Tasks.
  bool job_refs = false;
  ZWQ_DEFINE_MAP(worker_id, host, memory, pid, credit, kernels, kernel_specs, tasks_frames,
                 job_refs)
};
struct Welcome {
  static constexpr MsgType kType = MsgType::kWelcome;
  std::uint64_t epoch = 0;
  std::uint32_t heartbeat_ms = 0;
  std::uint32_t liveness = 0;
  ZWQ_DEFINE_MAP(epoch, heartbeat_ms, liveness)
};
struct Tasks {
  static constexpr MsgType kType = MsgType::kTasks;
  std::uint64_t epoch = 0;
  // The job. Left out (an empty job_id) when `ref` names the job the Tasks before carried.
  JobSpec job;
  std::vector<SliceRun> runs;
  // The broker's number for the job, unique to one broker run (0: none, from an older broker).
  std::uint64_t ref = 0;
  // It names its job by `ref` and carries none.
  bool by_ref() const { return job.job_id.empty() && ref != 0; }
  ZWQ_DEFINE_MAP(epoch, job, runs, ref)
};
// The broker heard from a worker it does not know (it forgot it as unreachable while the
// worker's connection came back): the worker ends its session and registers again.
struct RegisterAgain {
  static constexpr MsgType kType = MsgType::kRegisterAgain;
  std::uint64_t epoch = 0;
  ZWQ_DEFINE_MAP(epoch)
};
struct WorkerHeartbeat {
  static constexpr MsgType kType = MsgType::kWorkerHeartbeat;
  std::string worker_id;
  std::uint64_t epoch = 0;
  ZWQ_DEFINE_MAP(worker_id, epoch)
};
struct Bye {
  static constexpr MsgType kType = MsgType::kBye;
  std::string worker_id;
  std::uint64_t epoch = 0;
  ZWQ_DEFINE_MAP(worker_id, epoch)
};

// ---- results: worker -> broker ----
struct Results {
  static constexpr MsgType kType = MsgType::kResults;
  std::uint64_t epoch = 0;
  std::string worker_id;
  std::string job_id;
  std::vector<SliceOutcome> items;
  // The longest one of these slices took to compute, in microseconds (0: not measured); the
  // broker sizes its leases by it.
  std::uint64_t slowest_us = 0;
  ZWQ_DEFINE_MAP(epoch, worker_id, job_id, items, slowest_us)
};

// ---- events: broker -> subscribers ----
struct BrokerHeartbeat {
  static constexpr MsgType kType = MsgType::kBrokerHeartbeat;
  std::uint64_t epoch = 0;
  ZWQ_DEFINE_MAP(epoch)
};
struct JobEvent { static constexpr MsgType kType = MsgType::kJobEvent; JobStatus status; ZWQ_DEFINE_MAP(status) };
struct CancelEvent { static constexpr MsgType kType = MsgType::kCancelEvent; std::string job_id; ZWQ_DEFINE_MAP(job_id) };
struct ShutdownEvent { static constexpr MsgType kType = MsgType::kShutdownEvent; std::uint64_t epoch = 0; ZWQ_DEFINE_MAP(epoch) };

}  // namespace msg
}  // namespace zwq
