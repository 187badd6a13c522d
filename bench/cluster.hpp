// A broker and workers started by the benchmark itself, for the measurements that need what
// LocalCluster does not expose: a worker credit, one process per worker (to throttle one), and
// the process ids whose CPU time and memory are read.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"
#include "zwq/client.hpp"

namespace zwq::bench {

struct BenchClusterOptions {
  std::string bin_dir;          // where zwq-broker and zwq-worker are
  int workers = 1;              // 0: a broker alone
  std::uint32_t credit = 0;     // zwq-worker --credit; 0 = its default
  std::uint32_t max_batch = 0;  // zwq-broker --max-batch; 0 = its default (the whole batch)
  bool separate = false;        // one zwq-worker process per worker (else one --count N)
  std::string slow_cgroup;      // separate only: a cgroup-v1 cpu directory for worker 0
  std::chrono::seconds start_timeout{60};
  std::string log_level = "warn";        // of the broker and the workers
  int nice = 0;                          // zwq-worker --nice
  std::vector<std::string> broker_args;  // appended to zwq-broker's (zwq-bench --broker-arg)
};

class BenchCluster {
 public:
  // Starts the broker (private ipc directory), then the workers, and waits until the broker lists
  // them all. Throws std::runtime_error on failure or timeout.
  explicit BenchCluster(BenchClusterOptions options);
  ~BenchCluster();
  BenchCluster(const BenchCluster&) = delete;
  BenchCluster& operator=(const BenchCluster&) = delete;

  const std::string& address() const { return address_; }
  Client& client() { return *client_; }
  pid_t broker_pid() const { return broker_.pid(); }
  // Every process computing slices: the zwq-worker processes started and their children.
  std::vector<pid_t> worker_pids() const;
  // True while the broker and every worker process run.
  bool healthy();

 private:
  void start_broker();
  void start_workers();
  void wait_for_workers(std::chrono::steady_clock::time_point deadline);

  BenchClusterOptions options_;
  std::string temp_dir_;
  std::string address_;
  Child broker_;
  std::vector<Child> workers_;
  std::optional<Client> client_;
};

// A cgroup-v1 cpu directory whose members get `percent` % of one CPU (CFS quota), removed on
// destruction. Empty when the cpu controller is not mounted writable (then `error()` says why).
class CpuQuota {
 public:
  explicit CpuQuota(int percent);
  ~CpuQuota();
  CpuQuota(const CpuQuota&) = delete;
  CpuQuota& operator=(const CpuQuota&) = delete;
  bool ok() const { return !dir_.empty(); }
  const std::string& dir() const { return dir_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  std::string error_;
};

// Moves `pid` into the cgroup directory `dir`; false on failure.
bool join_cgroup(const std::string& dir, pid_t pid);

}  // namespace zwq::bench
