// zwq worker: one stateless worker process's engine (docs/PROTOCOL.md, "Tasks messages").
//
// A Worker asks the broker's control endpoint where the other endpoints are, registers with
// Hello, then computes the slices the broker leases to it, up to its credit, directly on the
// shared-memory datasets (mapped once, reused) and sends back only the partial results. It
// hides heartbeats, cancellation and reconnects (after a broker restart or a lost broker)
// behind one call, run().
//
// Thread safety: run() is called once, from one thread; it owns the control and events sockets
// and a PUSH for heartbeats, and starts one more thread that owns the tasks socket, computes the
// slices and sends their Results on a socket of its own (so that heartbeats go on during a long
// slice). stop() and stats() may be
// called from any thread, and stop() from a signal handler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace zwq {

class KernelRegistry;

struct WorkerOptions {
  // The broker's control endpoint ("ipc://DIR/control", "tcp://host:port"); empty = $ZWQ_BROKER.
  std::string broker;
  // Slices the broker may lease to this worker at once (>= 1). The broker sends fewer when the
  // slices are long: about 4 ms of work per batch, four batches in flight (docs/PROTOCOL.md,
  // "Credit"), so the credit only binds for tiny slices, where more means fewer messages per
  // slice (no-op slices: ~0.3 µs each, so 4096 is ~1 ms of work per round trip).
  std::uint32_t credit = 4096;
  // Routing id and name in the broker's worker list (1-255 printable bytes); empty =
  // "<host>-<pid>-<4 random hex>".
  std::string worker_id;
  // How long run() waits for the broker's first InfoRep before failing; 0 = forever.
  std::uint32_t connect_timeout_ms = 10000;
  // Pre-fault the page tables of each 2 MiB chunk of a dataset the first time a slice reaches it
  // (MADV_POPULATE_READ/WRITE): one call per chunk instead of a page fault per 4 KiB.
  bool populate = true;
  // Dataset mappings kept open; the least recently used beyond this are unmapped.
  std::size_t max_mappings = 64;
  // The kernels this worker offers and announces in Hello (built-in ones plus plugins, see
  // worker/src/plugin_loader.hpp); null = KernelRegistry::builtin(). Shared, so that whatever
  // owns the plugins' code stays loaded as long as a worker uses it.
  std::shared_ptr<const KernelRegistry> kernels;
};

class Worker {
 public:
  // Counters since construction. Dropped messages are peer input that was malformed or did not
  // fit the protocol state (wrong epoch, Tasks before Welcome); they are dropped, never fatal.
  struct Stats {
    std::uint64_t slices_done = 0;       // outcomes with code 0
    std::uint64_t slice_errors = 0;      // outcomes with an error code
    std::uint64_t slices_dropped = 0;    // not computed: job cancelled or broker lost
    std::uint64_t dropped_messages = 0;  // bad or unexpected input from the broker
    std::uint64_t results_sent = 0;      // Results messages
    std::uint64_t reconnects = 0;        // sessions restarted after a lost broker
  };

  // Why run() returned.
  enum class Exit { kShutdown, kStopped };

  // Resolves the options (broker from $ZWQ_BROKER, default worker id). Throws SetupError when
  // no broker address is known, credit is 0 or the worker id is unusable. `logger` may be null
  // (spdlog's default logger is used).
  explicit Worker(WorkerOptions options, std::shared_ptr<spdlog::logger> logger = nullptr);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Connects, registers and serves the broker until a ShutdownEvent (kShutdown) or stop()
  // (kStopped: pending results are sent, then Bye). A lost broker is not an exit: the worker
  // reconnects with backoff. Throws SetupError if the broker does not answer within
  // connect_timeout_ms at first, answers with an error or another protocol version.
  Exit run();

  // Asks run() to return soon: the slice in hand is finished (waiting at most 2 s) and its result
  // sent, then Bye hands the rest back to the broker. Async-signal-safe; idempotent.
  void stop() noexcept;

  Stats stats() const;
  // The resolved options (broker address and worker id filled in).
  const WorkerOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zwq
