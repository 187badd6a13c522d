// Job: one submitted job as the scheduler keeps it (spec, state, pending slices, collector,
// counters, result). A plain aggregate owned by the Scheduler; not thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "collector.hpp"
#include "pending.hpp"
#include "time.hpp"
#include "zwq/kernel.hpp"
#include "zwq/messages.hpp"

namespace zwq::broker {

struct Job {
  std::uint64_t serial = 0;            // submission order: lower runs first
  JobSpec spec;                        // job_id and slice_size filled in by the broker
  const KernelInfo* kernel = nullptr;  // from the registry, which outlives the scheduler
  std::string spec_bytes;              // spec, msgpack-encoded once for every Tasks message
  JobState state = JobState::kQueued;
  JobCollector collector;
  PendingRanges pending;
  std::uint64_t retried = 0;     // slices handed out again after a lease was lost
  std::uint64_t slowest_us = 0;  // the slowest slice workers reported (sets its lease)
  double pace_us = 0;  // moving average of µs per slice over its workers; 0: unknown (dispatch)
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
