// TasksDecoder: reads the Tasks messages of the compute thread without decoding again the job
// they name when it is the one the message before named.
//
// Every Tasks message carries its JobSpec whole (docs/PROTOCOL.md), and a job's slices come in
// many messages: one slice each with `--max-batch 1`. Decoding that map again for every message
// (its strings, its datasets, a check) was about a quarter of a worker's time on tiny slices.
// The decoder keeps the bytes of the last job it decoded; a message whose job value starts with
// those bytes names that very job (msgpack is read front to back, so a complete value that is a
// prefix of another is that value), and gets the JobSpec decoded then, shared.
//
// Many small jobs of one kind (Client::run_many, Pool.apply_async) differ only in their ids. The
// broker packs a JobSpec's id first (SpecPacker), so a job whose bytes after its id are the last
// job's gets a copy of the last JobSpec with its own id, checked as decoding checks it: on
// one-slice jobs that took a worker from 2.5 to 1.6 µs of CPU per job.
//
// A Tasks that names its job by `ref` (no epoch, no job) is read too, and comes out without a
// job: only the compute thread knows which job the ref names (see ComputeThread::accept).
//
// Error model: read() never fails. It takes only a well-formed Tasks message of the shapes our
// broker writes (the body's keys epoch, job, runs and ref, each at most once, in any order: epoch,
// job and runs, or ref and runs, or all four). For anything else
// — another message type, an unknown key, a bad value — it returns nothing, and the caller
// decodes the frame the usual way (decode_envelope, decode_body), which also gives the error of
// a bad one. So both ways accept the same messages and agree on what they say.
//
// Not thread-safe: one per compute thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "zwq/messages.hpp"

namespace zwq::worker {

// A Tasks message with its job shared between the messages that name it.
struct TasksFrame {
  std::uint64_t epoch = 0;             // 0 when named by ref
  std::shared_ptr<const JobSpec> job;  // null when named by ref, until the ref is resolved
  std::vector<SliceRun> runs;
  std::uint64_t ref = 0;  // Tasks.ref (0: none)

  bool named() const { return job == nullptr; }

  // The same, from a Tasks message decoded the usual way.
  static TasksFrame from(msg::Tasks t);
};

class TasksDecoder {
 public:
  // The Tasks message in `data`, or nothing (see the error model above).
  std::optional<TasksFrame> read(const void* data, std::size_t size);

  // How many messages reused the last job's JobSpec, how many copied it with another id, and how
  // many decoded one (for tests).
  std::uint64_t reused() const { return reused_; }
  std::uint64_t copied() const { return copied_; }
  std::uint64_t decoded() const { return decoded_; }

 private:
  // Keeps job_'s bytes after its id, when job_bytes_ starts with the id.
  void remember_rest();

  std::string job_bytes_;  // the encoded JobSpec of job_
  std::shared_ptr<const JobSpec> job_;
  std::uint32_t job_fields_ = 0;  // job_'s field count
  std::string job_rest_;          // job_bytes_ after the id (empty: none to compare with)
  std::uint64_t reused_ = 0;
  std::uint64_t copied_ = 0;
  std::uint64_t decoded_ = 0;
};

}  // namespace zwq::worker
