// Private: a child process owned by an object (LocalCluster's broker and workers, the command of
// `zwq local`).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "zwq/status.hpp"

namespace zwq::detail {

struct SpawnOptions {
  std::vector<std::string> env;   // "NAME=VALUE" entries added to (or replacing in) our environment
  bool stdout_to_stderr = false;  // keep a library user's stdout free of the child's chatter
  bool discard_stdout = false;    // send the child's stdout to /dev/null (wins over the above)
  bool capture_stdout = false;    // a pipe the parent reads with read_all() (wins over both)
  bool die_with_parent = true;    // SIGTERM the child if we die without cleaning up (even SIGKILL)
};

// Runs a program with fork/execve and owns it: the destructor stops it (SIGTERM, then SIGKILL
// after 3 s) and reaps it, so it never outlives its owner as a stray or a zombie.
// Move-only; not thread-safe.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { stop(); }
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts `path` (an executable file; no $PATH search) with argv = [path, args...]. Fails with
  // kInternal when it cannot be executed (the message names it and why).
  static Result<ChildProcess> spawn(const std::string& path, const std::vector<std::string>& args,
                                    const SpawnOptions& options = {});

  pid_t pid() const { return pid_; }
  const std::string& path() const { return path_; }
  // True while the process runs; reaps it once it has exited.
  bool running();
  // How it ended: its exit code, or 128 + the signal that killed it; empty while it runs.
  std::optional<int> exit_status() const { return status_; }
  // Sends `sig` if it still runs.
  void signal(int sig);
  // Waits until it exits or `deadline` passes; true if it exited.
  bool wait_until(std::chrono::steady_clock::time_point deadline);
  // Waits without a deadline; returns exit_status().
  int wait();
  // SIGTERM, up to `grace` for it to exit, then SIGKILL; returns exit_status(). No-op once it
  // exited.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
  // "zwq-broker (pid 123) exited with status 1" / "... was killed by signal 9".
  std::string describe_exit() const;
  // capture_stdout: reads the child's stdout until it closes it or `timeout` passes (then the
  // child is stopped); the text read. Otherwise "".
  std::string read_all(std::chrono::milliseconds timeout);

 private:
  void reap(int wait_status);
  void close_output();
  pid_t pid_ = -1;
  int out_fd_ = -1;  // capture_stdout: the read end of the child's stdout
  std::string path_;
  std::optional<int> status_;
};

// The first of `dirs` holding an executable `name`, as a path; empty if none does.
std::optional<std::string> find_in_dirs(const std::string& name,
                                        const std::vector<std::string>& dirs);
// The directories of $PATH.
std::vector<std::string> path_dirs();
// Where zwq's own programs (zwq-broker, zwq-worker, zwq-tracker) are looked for, in order:
// `bin_dir` alone when given; else the directory of this executable and its ../bin (a test
// binary beside build/bin), $ZWQ_BIN_DIR, then $PATH.
std::vector<std::string> zwq_program_dirs(const std::string& bin_dir = "");
// Finds `name` like a shell does: a name with a '/' is taken as is, others are looked up in $PATH.
std::optional<std::string> find_executable(const std::string& name);

}  // namespace zwq::detail
