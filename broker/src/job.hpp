// Job: one submitted job as the scheduler keeps it (spec, state, pending slices, collector,
// counters, result). A plain aggregate owned by the Scheduler; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "collector.hpp"
#include "pending.hpp"
#include "time.hpp"
#include "zwq/kernel.hpp"
#include "zwq/messages.hpp"

namespace zwq::broker {

// What jobs that differ only in their id, their range (first, count) and their parameter sets have
// in common: the same kernel, slice size, parameters and datasets, so about the same time per
// slice. The scheduler keeps the pace such jobs showed, for the next one of the shape to start
// from (docs/PROTOCOL.md, "Credit").
struct JobShape {
  std::string kernel;
  std::uint64_t slice_size = 0;
  Params params;
  DatasetRef input, input2, output;
  double pace_us = 0;  // moving average of µs per slice over the shape's jobs; 0: unknown

  // True if `spec` (slice_size filled in) has this shape.
  bool matches(const JobSpec& spec) const {
    return spec.kernel == kernel && spec.slice_size == slice_size && spec.params == params &&
           spec.input == input && spec.input2 == input2 && spec.output == output;
  }
};

// The speeds (slices per µs) of the workers that may take a job, as dispatch weighs them.
struct WorkerSpeeds {
  double sum = 0;   // of every worker that may take the job
  double mean = 1;  // of those whose pace is known: what an unknown one counts as
  // Near the job's end only (Scheduler::near_end): slices of the job its workers hold and have
  // likely computed since they last reported (the time since, at each one's pace, up to what it
  // holds).
  bool near_end = false;
  double computed = 0;
};

struct Job {
  std::uint64_t serial = 0;  // submission order: lower runs first
  // The job's number in Tasks messages (Tasks.ref): the broker's epoch plus its serial, so that
  // a number never names a job of another broker run. Never 0.
  std::uint64_t ref = 0;
  JobSpec spec;                        // job_id and slice_size filled in by the broker
  const KernelInfo* kernel = nullptr;  // from the registry, which outlives the scheduler
  std::string spec_bytes;              // spec, msgpack-encoded once for every Tasks message
  JobState state = JobState::kQueued;
  JobCollector collector;
  PendingRanges pending;
  std::uint64_t retried = 0;  // slices handed out again after a lease was lost
  // Lease records (runs held by workers) that point at this job; the scheduler keeps it, so that
  // finishing a job whose slices all came back skips the walk over every worker's leases.
  std::uint64_t lease_records = 0;
  std::uint64_t slowest_us = 0;  // the slowest slice workers reported (sets its lease)
  double pace_us = 0;  // moving average of µs per slice over its workers; 0: unknown (dispatch)
  std::shared_ptr<JobShape> shape;  // shared with the jobs of its shape the scheduler recalls
  // µs per slice as known of the job: its own pace, else its shape's; 0: unknown.
  double known_pace_us() const { return pace_us > 0 || !shape ? pace_us : shape->pace_us; }
  // Scheduler::dispatch()'s scratch: `speeds` as worked out in dispatch pass `speeds_pass`
  // (0: never); a later pass works them out again.
  std::uint64_t speeds_pass = 0;
  WorkerSpeeds speeds;
  TimePoint submitted{};
  TimePoint finished{};  // when the state became final
  ErrorCode error_code = ErrorCode::kOk;
  std::string error;
  JobResult result;  // kDone only; gather bytes stay in the collector

  bool final() const { return job_state_final(state); }
  // The status as JobStatus reports it at `now`.
  JobStatus status(TimePoint now) const;
  // The result with the gathered bytes (copied out of the collector).
  JobResult full_result() const;
};

}  // namespace zwq::broker
