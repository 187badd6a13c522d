// zwq-broker as a library: the process that owns the job queue (docs/PROTOCOL.md).
//
// A Broker binds four ZeroMQ endpoints (control, tasks, results, events), hands slices of jobs to
// registered workers within their credit, collects their partial results exactly once and answers
// clients. `zwq-broker` (broker/src/main.cpp) is a thin command line around this class; tests and
// embedders may run one on a thread.
//
// Errors: the constructor throws zwq::SetupError when an endpoint cannot be bound, the private
// ipc directory cannot be made or the ready file cannot be written. After that nothing a peer
// sends makes the broker throw: bad input is answered with ErrorRep or dropped and counted.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace zwq {

namespace broker {
class Server;
}

struct BrokerOptions {
  // Where to listen. Empty: a private directory (mode 0700) named zwq-<pid>-<random> under
  // $XDG_RUNTIME_DIR or /tmp, removed at exit. "ipc://DIR/control": the four ipc endpoints in DIR.
  // "tcp://HOST:PORT": control on PORT, tasks/results/events on PORT+1..PORT+3.
  // "tcp://HOST:*": all four on ephemeral ports.
  std::string bind;
  // How often the broker publishes BrokerHeartbeat and workers send WorkerHeartbeat (workers
  // send theirs from a thread of their own, so a long slice does not silence them). Works down
  // to 50 ms; see docs/RELIABILITY.md for why 1000.
  std::uint32_t heartbeat_ms = 1000;
  // Heartbeats a worker may miss before it is declared dead and its slices are requeued (>= 2:
  // a worker's heartbeat may come up to 1.25 intervals after its last message).
  std::uint32_t liveness = 5;
  // Leases (docs/RELIABILITY.md): a worker holding slices must report an outcome at least once
  // per lease, else its slices are requeued and it gets no more until it reports again (a hung
  // kernel, SIGSTOP). The lease is lease_factor x the slowest slice seen for the job, at least
  // lease_floor_ms; before any slice of the job has finished it is lease_first_ms.
  std::uint32_t lease_floor_ms = 10000;
  std::uint32_t lease_factor = 10;
  std::uint32_t lease_first_ms = 60000;
  // A slice whose attempts were lost with their worker (killed or stalled) this many times fails
  // its job with an error naming the job, slice, kernel and the worker's fate; 0 = never.
  std::uint32_t max_lost_attempts = 3;
  // When non-empty: the journal directory. Accepted jobs, covered slices (with the partials an
  // exact result needs) and finished jobs are written there, so that a broker restarted with the
  // same directory resumes unfinished jobs and still answers for finished ones. Use the same
  // --bind address, so that workers and waiting clients find the restarted broker.
  std::string journal;
  // Covered slices are written to the journal at least this often (batched, not one write per
  // slice), and fdatasync'ed at most every journal_fsync_ms (0: with every write).
  std::uint32_t journal_flush_ms = 100;
  std::uint32_t journal_fsync_ms = 1000;
  // The journal only grows while the broker runs: once it is this large and twice its size after
  // the last rewrite, it is rewritten from the jobs the broker holds (0: only at start).
  std::uint64_t journal_rewrite_bytes = std::uint64_t{64} << 20;
  // On stop() (SIGTERM): new jobs are refused (shutting_down) while running jobs get up to this
  // long to finish; what is unfinished then is in the journal (if any) or lost. A second stop()
  // or a ShutdownReq ends at once.
  std::uint32_t drain_ms = 10000;
  // Elements per slice for jobs that ask for slice_size 0: larger slices cost fewer messages,
  // smaller ones balance better and lose less work when a worker dies.
  std::uint64_t default_slice_size = 262144;
  // Dispatch (docs/PROTOCOL.md, "Credit"): a worker's slices go out in batches of about
  // batch_target_us of its observed time per slice, pipeline_depth batches in flight (>= 1),
  // each batch in Tasks messages of at most max_batch slices (0: one message per batch).
  std::uint32_t batch_target_us = 4000;
  std::uint32_t pipeline_depth = 4;
  std::uint32_t max_batch = 0;
  // After a control request, or a Results that finished a job, the loop keeps polling without
  // sleeping for up to spin_us (never past its next timer or a stop) before it blocks, yielding
  // its core to any other runnable thread between polls; 0 never spins. What answers the
  // request (the Results of the job it started, the client's next request) then finds it awake:
  // on a VM, waking a thread whose core went idle costs tens of µs, several times per round trip.
  // Not after a submit whose jobs are all expected to take longer than spin_us (their pace known
  // from their shape's last jobs): their workers need the cores more.
  std::uint32_t spin_us = 100;
  // When non-empty: after binding, the control endpoint and "\n" are written to this file
  // atomically (temporary file + rename), so scripts can wait for it.
  std::string ready_file;
  // Most SliceResults in one FetchRep (also the limit when a client asks for 0).
  std::uint32_t max_fetch_items = 4096;
  // Least time between two JobEvents of one running job (a final JobEvent is always sent).
  // JobEvents are built only while some subscriber takes the job topic.
  std::uint32_t progress_interval_ms = 100;
  // Jobs larger than this many slices are refused: per-slice bookkeeping costs ~40 bytes.
  std::uint64_t max_slices_per_job = std::uint64_t{1} << 24;
  // Finished jobs kept for Status/Wait/Fetch; the oldest are forgotten beyond this.
  std::uint32_t max_finished_jobs = 10000;
  // Per-slice results kept of finished jobs for Fetch, in slices (~33 bytes each): beyond it the
  // oldest finished jobs keep their result and status, and Fetch of their slices is refused
  // (out_of_range). The newest finished job and gather jobs keep theirs.
  std::uint64_t max_finished_slices = std::uint64_t{1} << 22;
};

// The four bound addresses, as ZMQ_LAST_ENDPOINT reports them (the real port for "*"; a
// wildcard host such as 0.0.0.0 is left for peers to replace by the host they reached).
struct BrokerEndpoints {
  std::string control;
  std::string tasks;
  std::string results;
  std::string events;
};

// One broker. Not copyable or movable.
//
// Thread safety: construct it on any thread, then call run() on exactly one thread.
// endpoints() and epoch() are immutable after construction and may be read from any thread.
// stop() may be called from any thread and from a signal handler (it only stores an atomic flag).
class Broker {
 public:
  // Binds every endpoint and writes the ready file. `logger` may be null (logs are discarded).
  // Throws zwq::SetupError on failure (nothing stays bound and no directory is left behind).
  Broker(BrokerOptions options, std::shared_ptr<spdlog::logger> logger);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  const BrokerEndpoints& endpoints() const;
  // Random per broker start; announced in Welcome and InfoRep.
  std::uint64_t epoch() const;

  // Serves until stop() or a ShutdownReq, then publishes ShutdownEvent (unless a journal keeps
  // the jobs for a restart: then workers wait for the broker to come back), closes the sockets
  // and removes the private ipc directory. Returns at once if called again after that.
  void run();
  // Asks run() to stop accepting jobs and return once no job is running, no worker is left or
  // drain_ms passed; a second call returns within ~100 ms. Async-signal-safe.
  void stop() noexcept;

 private:
  std::unique_ptr<broker::Server> server_;
};

}  // namespace zwq
