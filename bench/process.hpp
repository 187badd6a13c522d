// Child processes of the benchmark: the broker and workers it starts itself, the raw ZeroMQ peers
// and the Python peers. Each is owned by one Child, which stops and reaps it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace zwq::bench {

class Child {
 public:
  enum class Output { kInherit, kDiscard, kCapture };

  Child() = default;
  ~Child() { stop(); }
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // fork + execv of `path` with argv = [path, args...]; stdout inherited, discarded or captured
  // (read it with read_all). The child gets SIGTERM if this process dies. Throws
  // std::runtime_error when it cannot be started.
  static Child spawn(const std::string& path, const std::vector<std::string>& args,
                     Output out = Output::kInherit);

  pid_t pid() const { return pid_; }
  bool running();
  // Waits up to `timeout` for it to exit; its exit code (128 + signal when killed), or empty.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  // SIGTERM, up to `grace` to exit, then SIGKILL; returns the exit code. No-op once reaped.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
  // Reads the captured stdout until EOF or `timeout` (then the child is stopped); the text read.
  std::string read_all(std::chrono::milliseconds timeout);

 private:
  void reap(int status);
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::optional<int> code_;
};

// The directory holding this executable (for zwq-broker, zwq-worker and `_push`/`_echo` peers).
std::string self_dir();
std::string self_path();

// Sum of the CPU time of every thread of `pid`, in seconds (from /proc/PID/task/*/schedstat,
// nanosecond resolution); empty if the process is gone.
std::optional<double> cpu_seconds(pid_t pid);
// Context switches (voluntary and not) of every thread of `pid`; empty if the process is gone.
std::optional<std::uint64_t> context_switches(pid_t pid);
// The direct children of `pid` (from /proc/PID/task/*/children).
std::vector<pid_t> children_of(pid_t pid);
// Resident set size of `pid` in bytes (VmRSS); empty if the process is gone.
std::optional<std::uint64_t> rss_bytes(pid_t pid);

// Remembers a /dev/shm file to unlink if the benchmark is stopped by SIGINT/SIGTERM, and installs
// the handler that does so (and then exits; children die with us through PR_SET_PDEATHSIG).
void remove_on_signal(const std::string& path);
void forget_on_signal(const std::string& path);
void install_signal_cleanup();

}  // namespace zwq::bench
