// A broker and its workers on this machine, for the lifetime of one object: zwq's
// `with multiprocessing.Pool() as pool:`.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "zwq/status.hpp"

namespace zwq {

class Client;

struct LocalClusterOptions {
  int workers = 0;      // worker processes to start; 0 = std::thread::hardware_concurrency
  std::string bind;     // broker --bind address; empty = ipc:// in the cluster's own directory
  std::string bin_dir;  // where zwq-broker and zwq-worker are; empty = the directory of
                        // this executable, then $ZWQ_BIN_DIR, then $PATH
  std::string log_level = "warn";                   // passed to both as --log-level
  std::chrono::milliseconds start_timeout{10000};   // broker ready + all workers registered
  std::chrono::milliseconds request_timeout{5000};  // the client()'s ClientOptions
  std::vector<std::string> plugins;  // kernel plugins every worker loads (zwq-worker --plugin)
  // Added to the workers' nice value (zwq-worker --nice, 0-19): they share the cores with the
  // broker and the client, which they wait on, so that these run first when they wake. 10^5
  // one-slice jobs from one client on 2 cores: zwq-bench --only async, --worker-nice 10 against
  // 0 (docs/BENCHMARKS.md).
  int worker_nice = 10;
  // Appended to zwq-broker's command line after the cluster's own options, one argument each
  // (e.g. "--pipeline-depth=8"): its dispatch and loop settings, for tuning and measuring. A
  // broker that refuses them exits, and the start fails with SetupError.
  std::vector<std::string> broker_args;
};

// Starts `zwq-broker` and `zwq-worker --count N --respawn` as child processes, waits until the
// broker reports N workers, and stops them again on destruction (SIGTERM, then SIGKILL after
// 3 s), so that no process, socket or temporary file outlives it. If this program is killed
// instead, the broker and workers get SIGTERM as their parent dies, and the tracker process of
// zwq/shared_array.hpp removes the cluster's directory. Like Pool, it replaces a worker
// process that a signal killed (a crashing kernel, kill -9); the broker hands that worker's
// slices to the others meanwhile.
//
// Thread safety: none; use it from one thread. Its client() is a Client (one thread only), so
// other threads should Client::connect(address()) themselves. Move-only.
class LocalCluster {
 public:
  // Starts the cluster. Throws SetupError when a binary cannot be found or started, exits early,
  // or the cluster is not ready within start_timeout (the message says which and where).
  explicit LocalCluster(LocalClusterOptions options = {});
  ~LocalCluster();
  LocalCluster(LocalCluster&&) noexcept;
  LocalCluster& operator=(LocalCluster&&) noexcept;
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // The broker's control endpoint (what ZWQ_BROKER would hold).
  const std::string& address() const;
  // A client connected to the broker, owned by the cluster.
  Client& client();
  // Number of workers requested.
  int workers() const;
  // OK while the broker and worker processes run; kUnreachable naming the process that exited.
  Status check() const;
  // Whether the broker has exited cleanly (asked to shut down: `zwq shutdown`,
  // Client::shutdown_broker()), which ends the cluster without an error. When the workers have
  // ended cleanly but the broker still runs, waits up to `grace` for it to exit.
  bool shut_down(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
  // Stops everything now (the destructor does the same); idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zwq
