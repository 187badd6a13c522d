// Test helper: a child process started from argv, with its stdout and stderr sent to a file;
// stopped (SIGTERM, then SIGKILL) and reaped on destruction.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace zwq::test {

class Process {
 public:
  // Starts argv[0] (a path) with `argv`; output goes to `log` (empty: /dev/null).
  explicit Process(const std::vector<std::string>& argv, std::string log = {})
      : log_(std::move(log)) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string out = log_.empty() ? "/dev/null" : log_;
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, argv[0].c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
  }
  ~Process() { stop(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // The exit code once the process ended within `timeout`; empty if it still runs. A process
  // killed by a signal gives 128 + the signal.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status_;
  }

  void stop() {
    if (status_ || pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (!wait_exit(std::chrono::seconds(3))) {
      ::kill(pid_, SIGKILL);
      (void)wait_exit(std::chrono::seconds(3));
    }
  }

  pid_t pid() const { return pid_; }

  // What it wrote so far.
  std::string output() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  pid_t pid_ = -1;
  std::string log_;
  std::optional<int> status_;
};

}  // namespace zwq::test
