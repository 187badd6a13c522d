// Scheduler: the broker's socket-free bookkeeping — the job table, registered workers, their
// leases and credit, dispatch decisions, heartbeat and lease expiry, poison slices
// (docs/PROTOCOL.md, docs/RELIABILITY.md).
//
// It is fed decoded messages and the current time (it never reads a clock) and answers with
// values: replies, Dispatch orders for the server to send, and Changes to announce. Peer input
// never makes it throw or assert: what it cannot use is counted and ignored.
//
// Not thread-safe: the server's poll loop owns it.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "job.hpp"
#include "kernel_catalog.hpp"
#include "time.hpp"
#include "validation.hpp"
#include "zwq/kernel.hpp"
#include "zwq/messages.hpp"
#include "zwq/protocol.hpp"
#include "zwq/spec_packer.hpp"

namespace zwq::broker {

struct SchedulerOptions {
  // This broker's epoch: Results carrying another one are dropped.
  std::uint64_t epoch = 0;
  // A worker not heard from for heartbeat_ms * liveness is dead.
  std::uint32_t heartbeat_ms = proto::kDefaultHeartbeatMs;
  std::uint32_t liveness = proto::kDefaultLiveness;
  // Slice size for jobs that ask for 0, and the most slices a job may have.
  ValidationLimits limits;
  // Finished jobs kept for Status/Wait/Fetch; the oldest are forgotten beyond this.
  std::size_t max_finished_jobs = 10000;
  // Per-slice results (for Fetch) kept of finished jobs, in slices, ~33 bytes each: beyond it the
  // oldest finished jobs keep their result and status but give up their per-slice results (the
  // newest finished job always keeps its own; gather jobs keep theirs, which are their result).
  // Without it a broker kept 10000 jobs' worth: ~88 GB for 1 GiB sums in 4 KiB slices (262144
  // slices each).
  std::uint64_t max_finished_slices = std::uint64_t{1} << 22;
  // Leases (docs/RELIABILITY.md): a worker holding slices must return an outcome at least once
  // per lease, else its slices are requeued and it gets nothing until it reports again. A lease
  // is lease_factor x the slowest slice seen for the job, at least lease_floor_ms; while no slice
  // of the job has finished it is lease_first_ms. Short leases find a hung worker sooner; long
  // ones spare slow but healthy slices.
  std::uint32_t lease_floor_ms = 10000;
  std::uint32_t lease_factor = 10;
  std::uint32_t lease_first_ms = 60000;
  // A slice whose attempts were lost with their worker (killed, or stalled past a lease) this many
  // times fails its job (a poison slice); 0 = never.
  std::uint32_t max_lost_attempts = 3;
  // Dispatch (docs/PROTOCOL.md, "Credit"): slices go out in batches of about batch_target_us of
  // the worker's observed time per slice, with at most pipeline_depth batches' worth in flight
  // (and never more than its credit), so that the next batch already waits at the worker when it
  // finishes one. Longer batches cost fewer messages per slice; shorter ones leave less with a
  // dead or slow worker and end a job's tail sooner.
  // 4 ms: with 2 ms, tiny slices (whose pace, learnt from arrivals, includes the round trip)
  // were held to too little in flight: no-op throughput fell by a fifth. 16 ms (fewer Tasks
  // messages) sped a 1 GiB sum in 1 MiB slices up with one worker and down, by more, with two
  // (the log of 10fc2a7).
  // BrokerOptions::batch_target_us is the broker's default; the two agree (a test checks).
  std::uint32_t batch_target_us = 4000;
  // 4 rather than 2: a worker running one-slice jobs then holds 16 of them, not 8, which took
  // asynchronous small jobs from 32 k to 42 k jobs/s (zwq-bench --only async); the tail of a
  // job stays short since a batch is at most half a worker's share of what is left (T6 same).
  // >= 2 lets the next batch wait at the worker while it computes one; 1 works, unpipelined.
  std::uint32_t pipeline_depth = 4;
  // Splitting the credit into pipeline_depth batches pays only when each batch is at least this
  // much work: a message costs tens of µs of CPU on each side, which a batch of tiny slices
  // (no-ops) does not earn back. Below it, the credit goes out as one batch.
  std::uint32_t min_batch_us = 1000;
  // Slices per batch while nothing is known of a job's time per slice: few, so that a worker
  // hoards little if slices turn out long; the first report tells their time, and batches then
  // grow to the target at once. Until then a worker holds one such batch of the job, whatever
  // pipeline_depth (other jobs' slices do not count).
  std::uint32_t first_batch = 4;
  // A new job whose shape (JobShape: kernel, slice size, parameters, datasets) one of the last
  // `recalled_shapes` shapes had starts from the pace those jobs showed, as Dask starts a task
  // from the duration of its prefix: it skips first_batch and goes out in paced batches at once.
  // Without it, 10^5 one-slice jobs each count as unknown, and a worker holds only
  // pipeline_depth * first_batch of them. 0: every job starts unknown.
  std::uint32_t recalled_shapes = 16;
  // Most slices in one Tasks message (0: no limit but the batch). A limit below the batch does
  // not shrink what a worker holds, only how it is cut into messages: 1 sends every slice in a
  // message of its own, as the users' pyzmq programs PUSH one slice() per message.
  std::uint32_t max_batch = 0;
};

// Writes down what must survive a broker restart (the journal). The scheduler calls it as jobs
// are accepted, slices covered and jobs finished; see journal.hpp.
class JobLog {
 public:
  virtual ~JobLog() = default;
  // A new job was accepted. An error refuses the job (its SubmitRep would promise too much).
  virtual Status submitted(const Job& job) = 0;
  // Slice `slice` of `job` was covered (its partial is in job.collector).
  virtual void covered(const Job& job, std::uint64_t slice) = 0;
  // The job became final (done, failed or cancelled).
  virtual void finished(const Job& job) = 0;
};

// A job as the journal gives it back after a restart.
struct RecoveredJob {
  JobSpec spec;       // job_id and slice_size as the broker had filled them in
  KernelSpec kernel;  // the definition it ran with (empty name: not recorded; use the catalog's)
  std::vector<std::pair<std::uint64_t, CompactPartial>> covered;  // in acceptance order
  std::vector<std::string> gathered;    // kGather: bytes of covered[i], same order
  std::optional<Partial> merged;        // order-insensitive combiners: the merged state
  JobState state = JobState::kRunning;  // kDone, kFailed, kCancelled: final
  ErrorCode error_code = ErrorCode::kOk;
  std::string error;
  std::optional<JobResult> result;  // kDone
  // A final job whose per-slice results the broker had released (max_finished_slices) when it
  // rewrote the journal: `covered` is empty, and the job had covered released_covered slices.
  bool results_released = false;
  std::uint64_t released_covered = 0;
};

// Messages the scheduler could not use, by reason.
struct SchedulerCounters {
  std::uint64_t unknown_worker = 0;   // heartbeat/Bye from a worker id that is not registered
  std::uint64_t stale_epoch = 0;      // Results of another broker epoch
  std::uint64_t orphan_outcomes = 0;  // outcomes of a job id the broker does not know
  std::uint64_t workers_expired = 0;  // declared dead for missing heartbeats
  std::uint64_t workers_lost = 0;     // unreachable when the server sent to them
  std::uint64_t leases_expired = 0;   // workers that held slices past their lease
  std::uint64_t poison_slices = 0;    // slices that failed their job after max_lost_attempts
};

// A worker whose slices were taken back because it died or stalled.
struct WorkerLoss {
  std::string worker_id;
  std::string cause;  // "no heartbeat for 5000 ms", "lease expired: ...", "unreachable"
  std::uint64_t requeued = 0;
  bool removed = true;  // false: stalled, still registered
};

// One Tasks message to send: runs of one job for one worker. `job` stays valid until the
// scheduler is next modified.
struct Dispatch {
  std::string worker_id;
  const Job* job = nullptr;
  std::vector<SliceRun> runs;
  bool frames = false;  // the worker takes several Tasks in one message (Hello.tasks_frames)
  // To a worker that takes Tasks naming their job (Hello.job_refs): the job's ref, and whether
  // this Tasks carries the JobSpec. It does unless the Tasks the worker got before carried or
  // named the same job. 0 (an older worker): the JobSpec, and no ref.
  std::uint64_t ref = 0;
  bool with_spec = true;
};

// What happened since the last take_changes(), for the server to announce.
struct Changes {
  std::vector<std::string> finished;    // jobs that became done, failed or cancelled
  std::vector<std::string> progressed;  // jobs that accepted results (may repeat)
  std::vector<WorkerLoss> losses;       // workers declared dead or stalled
};

// What a Results message did.
struct ResultsTally {
  bool stale_epoch = false;
  std::uint64_t accepted = 0;
  std::uint64_t discarded = 0;
};

enum class HelloVerdict { kRegistered, kReplaced, kRejected };

class Scheduler {
 public:
  // `kernels` must outlive the scheduler.
  Scheduler(SchedulerOptions options, const KernelRegistry& kernels);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // ---- jobs (control requests) ----
  // Validates and queues a job (see validation.hpp for the errors). An empty job_id gets a
  // generated one; an id that exists is answered with that job (existed = true). A job of
  // count 0 is done at once with the identity result.
  Result<msg::SubmitRep> submit(JobSpec spec, TimePoint now);
  // Cancels a job that is not final: drops its queued slices and voids its leases. A final job
  // is left as it is. Fails with kUnknownJob.
  Result<JobStatus> cancel(const std::string& job_id, TimePoint now);
  // The job, or nullptr if unknown (or forgotten). Valid until the scheduler is next modified.
  const Job* find_job(const std::string& job_id) const;
  // Every known job, in submission order.
  std::vector<JobStatus> all_status(TimePoint now) const;
  // Which registered workers could take a job's slices now.
  enum class Takers : std::uint8_t {
    kSome,        // a worker that is not stalled serves it
    kStalled,     // only stalled workers serve it
    kNoWorker,    // no worker is registered
    kNoneServes,  // none has its kernel (on its dataset's host)
  };
  // Takers by (kernel, host of the job's hosted dataset or ""): status() of many jobs fills it,
  // so that a queue of jobs no worker takes costs one look at the workers per pair.
  using WaitReasons = std::map<std::pair<const KernelInfo*, std::string>, Takers>;
  // Runnable jobs (by serial) and how many older runnable jobs stand before each: for each, the
  // fewest that one of its workers (not stalled) serves first, since a worker takes the oldest
  // job it serves. A job no worker takes is not listed.
  using JobsAhead = std::unordered_map<std::uint64_t, std::uint64_t>;
  // JobsAhead for the runnable jobs up to serial `last`: one pass over them, with one look at
  // the workers per (kernel, place) pair. For status requests only: not cheap with many jobs.
  JobsAhead jobs_ahead(std::uint64_t last) const;
  // A job's status as clients see it, with the lease its workers have now (0 once final) and,
  // when it has nothing in flight, why no registered worker could take its slices, or else (when
  // `ahead` is given) how many older jobs are ahead of it. Without `ahead`, JobStatus::ahead is
  // 0: the statuses in wait, fetch and submit replies and in events leave it out.
  JobStatus status(const Job& job, TimePoint now, WaitReasons* reasons = nullptr,
                   const JobsAhead* ahead = nullptr) const;
  // status() with `ahead` worked out: what a StatusReq for one job answers.
  JobStatus status_with_ahead(const Job& job, TimePoint now) const;
  // True while some job is queued or running.
  bool has_unfinished_jobs() const;

  // ---- the journal ----
  // `log` (may be null; must outlive the scheduler) hears of accepted jobs, covered slices and
  // finished jobs from now on.
  void set_log(JobLog* log) { log_ = log; }
  // Re-creates a job from the journal, before any worker registers: its covered slices stay
  // covered, the rest run again. A final job keeps its state and result. Fails (and the job is
  // dropped) when its id is taken or its spec no longer validates (e.g. a kernel only a plugin
  // offered: no worker has announced it yet). What the job holds is moved out of `r` only when
  // it is restored: a job refused stays whole in `r` (the journal keeps it).
  Status restore(RecoveredJob& r, TimePoint now);
  Status restore(RecoveredJob&& r, TimePoint now) { return restore(r, now); }
  // Every job the scheduler holds (unfinished, and finished ones not yet forgotten), in the
  // order they were accepted: what a rewritten journal must keep. `out` is cleared first.
  void jobs_in_order(std::vector<const Job*>& out) const;

  // ---- workers (tasks endpoint) ----
  // Registers a worker (credit >= 1, else kRejected). A known id is replaced: its leases are
  // requeued first.
  HelloVerdict hello(const msg::Hello& m, TimePoint now);
  // Any message from a worker: refreshes its last-seen time. False (and counted) if unknown.
  bool heartbeat(const std::string& worker_id, TimePoint now);
  // The worker leaves: its leases are requeued. False (and counted) if unknown.
  bool bye(const std::string& worker_id, TimePoint now);
  // The server could not reach the worker (its connection closed): its leases are requeued
  // and each counts as a lost attempt.
  bool lose_worker(const std::string& worker_id, TimePoint now);
  // Workers not heard from for heartbeat_ms * liveness are removed; workers holding slices
  // without an outcome for a lease are marked stalled (they get nothing until they report
  // again). Either way their leases are requeued and count as lost attempts, which may fail a
  // job (see max_lost_attempts). Returns the ids of the removed workers; every loss is also in
  // take_changes().losses.
  std::vector<std::string> expire(TimePoint now);
  // The broker itself did not run for `gap` (its loop was starved or stopped): nobody's silence
  // during it is held against them — every worker's last-seen time and lease move on by `gap`.
  void forgive(Millis gap);
  std::vector<WorkerStatus> workers(TimePoint now) const;
  std::size_t worker_count() const { return workers_.size(); }
  bool has_worker(const std::string& worker_id) const;

  // ---- results ----
  // Frees the credit of each awaited outcome, offers every outcome to its job's collector, and
  // fails or completes the job when that follows.
  ResultsTally results(msg::Results& m, TimePoint now);

  // ---- dispatch ----
  // Hands pending slices to workers with room: oldest job first, in rounds so that every worker
  // gets a share, one batch per worker per round (one Dispatch, one Tasks message, unless
  // max_batch cuts it into several). A batch is the smallest of: about batch_target_us of the
  // worker's observed time per slice (first_batch while nothing is known of the job, and then
  // only one batch of it in flight per worker), ceil(credit / pipeline_depth), and half the
  // worker's part of what is left of the job, less what it holds (share_for: guided
  // self-scheduling weighted by speed, counting what the workers hold). A worker holds at most
  // pipeline_depth batches and never more than its credit. A suspect slice goes alone to a worker
  // that holds nothing, and that worker gets nothing else until it is back; stalled workers get
  // nothing. Replaces the contents of `out`.
  void dispatch(std::vector<Dispatch>& out, TimePoint now);
  // The time per slice the scheduler expects of `worker` on `job` (its own observed pace on it or
  // on the last job of its shape, else what the job's other workers showed), in µs; 0 when
  // nothing is known. For tests and status.
  double slice_us(const std::string& worker_id, const Job& job) const;
  // How long `job`'s pending slices are expected to take, in µs: their count at the pace known
  // for the job (its own, else that of its shape's last jobs), shared by the registered workers;
  // 0 when no pace is known. The server skips its spin after a submit whose job will not
  // answer within the spin anyway.
  double expected_us(const Job& job) const;
  // The lease a worker computing slices of `job` gets (see SchedulerOptions).
  Millis lease_for(const Job& job) const;

  // Moves what changed into `out` (replacing its contents).
  void take_changes(Changes& out);
  const SchedulerCounters& counters() const { return counters_; }
  // The kernels jobs may name: built-in ones and those live workers announced.
  const KernelCatalog& kernels() const { return catalog_; }
  const SchedulerOptions& options() const { return options_; }

 private:
  // A lease never outlives its job: finalize_job() drops the job's leases before it can be
  // forgotten.
  struct Lease {
    Job* job = nullptr;
    std::uint64_t first = 0;
    std::uint32_t count = 0;
    std::uint32_t attempt = 0;
    std::uint32_t outstanding = 0;  // slices of the run whose outcome is still awaited
  };
  struct Worker {
    std::string id;
    std::string host;
    std::string memory;  // Hello.memory: which /dev/shm it reads
    std::uint32_t pid = 0;
    std::uint32_t credit = 0;
    std::uint64_t inflight = 0;  // slices leased to it now (<= credit)
    std::uint64_t slices_done = 0;
    std::vector<std::string> kernels;  // empty: all
    TimePoint last_seen{};
    // Since when it has been computing what it holds, unreported: its last Results, or when it
    // got work while idle. (Heartbeats say nothing of its queue.)
    TimePoint progress_mark{};
    std::deque<Lease> leases;    // in dispatch order, which is the order it computes them in
    TimePoint lease_deadline{};  // while inflight > 0: an outcome is due before this
    std::uint64_t lease_ms = 0;  // the lease that deadline came from
    bool stalled = false;        // its lease ran out; it gets nothing until it reports again
    bool isolating = false;      // holds a suspect slice: it gets nothing else until that is back
    bool tasks_frames = false;   // Hello.tasks_frames
    bool job_refs = false;       // Hello.job_refs
    // The ref of the job the last Tasks sent to it carried or named (0: none since its Hello).
    // Its Tasks of that job leave the JobSpec out. Messages to a worker arrive in order or its
    // connection breaks; a broken one removes the worker (lose_worker) or is followed by a Hello.
    std::uint64_t spec_ref = 0;
    // Its pace on one job, observed from its Results (sizes its batches and its share).
    std::uint64_t pace_job = 0;            // serial of the job `pace_us` is for; 0: none
    std::shared_ptr<JobShape> pace_shape;  // that job's shape (null: none recalled)
    double pace_us = 0;                    // moving average of µs per slice; 0: unknown
    TimePoint pace_mark{};                 // start of the current arrival window (busy since then)
    std::uint64_t pace_slices = 0;         // slices reported since pace_mark
  };

  // A job whose datasets are in one host's memory is refused while workers are registered but
  // none with its kernel runs on that host (with none at all, it waits for them as any job does;
  // so does an accepted job whose host's workers leave).
  Status check_host_has_workers(const JobSpec& spec, const KernelInfo* kernel) const;
  std::unique_ptr<Job> make_job(JobSpec spec, const KernelInfo* kernel, TimePoint now);
  // Files a job that just became final (or was restored final): it is forgotten after
  // max_finished_jobs more, and its per-slice results are released once the finished jobs after
  // it hold max_finished_slices.
  void remember_finished(Job& job);
  std::shared_ptr<JobShape> shape_for(const JobSpec& spec);
  Worker* find_worker(const std::string& id);
  void remove_worker(const std::string& id);
  void requeue_leases(Worker& w, const std::string* loss_cause, TimePoint now);
  void lose(Worker& w, std::string cause, bool remove, TimePoint now);
  void renew_lease(Worker& w, TimePoint now);
  bool release_lease(Worker& w, const Job* job, std::uint64_t slice, std::uint32_t attempt);
  void release_lease_anywhere(const Job* job, std::uint64_t slice, std::uint32_t attempt);
  void drop_leases_of(Job& job);
  bool supports(const Worker& w, const Job& job) const;
  // Which registered workers could take `job`'s slices now (dispatch() skips stalled ones).
  Takers takers(const Job& job) const;
  // Why no worker takes `job`'s slices, as JobStatus.waiting says it; "" for kSome.
  static std::string waiting_reason(const Job& job, Takers takers);
  static std::string place_of(const Job& job);
  // Sets st.waiting: why no worker takes `job`'s slices, through `reasons` when given.
  void set_waiting(JobStatus& st, const Job& job, WaitReasons* reasons) const;
  Job* next_job_for(const Worker& w, bool& alone);
  void observe_pace(Worker& w, Job& job, std::uint64_t slices, std::uint64_t slowest_us,
                    TimePoint now);
  double pace_of(const Worker& w, const Job& job) const;
  const WorkerSpeeds& speeds(Job& job);
  std::uint64_t batch_for(const Worker& w, const Job& job) const;
  static std::uint64_t held_of(const Worker& w, const Job* job);
  // Of what `w` holds of `job` (`held`), the slices it has likely computed since its
  // progress_mark, by its pace on the job (0 when unknown).
  double computed_since_mark(const Worker& w, const Job& job, std::uint64_t held) const;
  // Whether `job` has more than one pending slice but no more than `credit` (that of the workers
  // that may take it): only then do shares count what the workers hold.
  static bool near_end(const Job& job, std::uint64_t credit);
  std::uint64_t share_for(const Worker& w, const Job& job, const WorkerSpeeds& speeds) const;
  std::string new_job_id();

  void complete_job(Job& job, TimePoint now);
  void fail_job(Job& job, ErrorCode code, std::string error, TimePoint now);
  void finalize_job(Job& job, JobState state, TimePoint now);

  SchedulerOptions options_;
  const KernelRegistry& kernels_;
  JobLog* log_ = nullptr;
  KernelCatalog catalog_{kernels_};  // kernels_ plus what registered workers announced
  SchedulerCounters counters_;
  Changes changes_;
  std::uint64_t next_serial_ = 1;

  // Every known job by id: the running ones and the last max_finished_jobs finished ones. Open
  // addressing: forgetting the oldest finished job (one per job finished, with 10^5 small jobs)
  // reads the table where its id hashes to, which finalize_job() prefetches one job ahead; a
  // node-based map's erase walked three or four cold nodes, 7 % of the broker's time on small
  // jobs (perf). Jobs live behind unique_ptr: a Job* stays valid while the table grows.
  absl::flat_hash_map<std::string, std::unique_ptr<Job>> jobs_;
  std::map<std::uint64_t, Job*> runnable_;  // jobs with pending slices, oldest first
  std::deque<const Job*> finished_order_;   // final jobs in the order they finished (to forget)
  // Final jobs still holding per-slice results, in the order they finished, and their slices.
  std::deque<Job*> results_held_;
  std::uint64_t results_held_slices_ = 0;
  std::deque<std::shared_ptr<JobShape>> shapes_;  // the last recalled_shapes shapes, newest last

  std::vector<std::unique_ptr<Worker>> workers_;  // registration order; dispatch rotates over it
  std::unordered_map<std::string, Worker*> worker_index_;
  std::size_t rotate_ = 0;
  std::vector<SliceRun> fresh_;           // dispatch()'s scratch
  SpecPacker spec_packer_;                // make_job()'s: each job's spec bytes
  std::shared_ptr<JobShape> last_shape_;  // the shape of the job made last
  std::uint64_t dispatch_pass_ = 0;       // dispatch() calls so far (keys speeds()'s cache in Job)
  TimePoint dispatch_now_{};              // the time the current dispatch() was given
};

}  // namespace zwq::broker
