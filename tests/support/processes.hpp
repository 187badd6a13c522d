// Test helpers for fault tests: a zwq-broker and zwq-worker processes started one by one, with
// known pids, so that a test can kill -9, SIGSTOP or SIGTERM exactly the one it means, and restart
// a broker on the same address (and journal). Built on the client library's private
// ChildProcess (RAII: whatever a test leaves running is stopped and reaped).
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "cluster.hpp"
#include "test_dir.hpp"
#include "zwq/client.hpp"

namespace zwq::test {

// A broker process on ipc://DIR/sock/control that can be killed and started again on the same
// address with the same arguments (e.g. --journal DIR/journal).
class BrokerProcess {
 public:
  BrokerProcess(const TestDir& dir, std::vector<std::string> args)
      : dir_(dir.path()), args_(std::move(args)) {
    address_ = "ipc://" + dir_ + "/sock/control";
  }
  ~BrokerProcess() { process_.stop(std::chrono::milliseconds(3000)); }

  // Starts it and waits until it is bound (its ready file). Throws std::runtime_error.
  void start() {
    const std::string ready = dir_ + "/ready";
    std::filesystem::remove(ready);
    std::vector<std::string> args = {"--bind", address_,      "--ready-file",
                                     ready,    "--log-level", "warn"};
    args.insert(args.end(), args_.begin(), args_.end());
    detail::SpawnOptions spawn;
    spawn.stdout_to_stderr = true;
    auto child =
        detail::ChildProcess::spawn(std::string(ZWQ_TEST_BIN_DIR) + "/zwq-broker", args, spawn);
    if (!child.ok()) throw std::runtime_error(child.error().to_string());
    process_ = std::move(child).value();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!std::filesystem::exists(ready)) {
      if (!process_.running()) throw std::runtime_error("zwq-broker exited at start");
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("zwq-broker not ready within 20 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // kill -9, and reap it.
  void kill9() {
    process_.signal(SIGKILL);
    process_.wait();
  }
  detail::ChildProcess& process() { return process_; }
  pid_t pid() const { return process_.pid(); }
  const std::string& address() const { return address_; }

 private:
  std::string dir_;
  std::vector<std::string> args_;
  std::string address_;
  detail::ChildProcess process_;
};

// zwq-worker processes, one per worker, with their pids.
class WorkerProcesses {
 public:
  explicit WorkerProcesses(std::string broker) : broker_(std::move(broker)) {}

  // Starts one worker (credit and any other zwq-worker arguments in `args`); returns its index.
  std::size_t add(const std::vector<std::string>& args = {}) {
    std::vector<std::string> all = {
        "--broker", broker_, "--log-level", "warn", "--connect-timeout-ms", "0"};
    all.insert(all.end(), args.begin(), args.end());
    detail::SpawnOptions spawn;
    spawn.stdout_to_stderr = true;
    auto child =
        detail::ChildProcess::spawn(std::string(ZWQ_TEST_BIN_DIR) + "/zwq-worker", all, spawn);
    if (!child.ok()) throw std::runtime_error(child.error().to_string());
    workers_.push_back(std::move(child).value());
    return workers_.size() - 1;
  }
  detail::ChildProcess& at(std::size_t i) { return workers_.at(i); }
  std::size_t size() const { return workers_.size(); }
  // Indices of the workers still running.
  std::vector<std::size_t> running() {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      if (workers_[i].running()) out.push_back(i);
    }
    return out;
  }

 private:
  std::string broker_;
  std::vector<detail::ChildProcess> workers_;
};

// Waits until the broker lists `n` workers (or `timeout` passes); true if it did.
inline bool wait_for_workers(Client& client, std::size_t n,
                             std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto w = client.workers();
    if (w.ok() && w.value().size() == n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Polls `condition` every 5 ms until it holds or `timeout` passes; true if it held.
template <typename F>
bool eventually(F&& condition, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

// The parent pid of `pid` from /proc (0 if it is gone).
inline pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  const auto close = line.rfind(')');  // the command may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  char state = 0;
  pid_t ppid = 0;
  rest >> state >> ppid;
  return ppid;
}

// Every process below `root` (children, grandchildren, ...), from /proc.
inline std::vector<pid_t> descendants(pid_t root) {
  std::vector<pid_t> all;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") == std::string::npos) all.push_back(std::stoi(name));
  }
  std::vector<pid_t> out = {root};
  for (std::size_t i = 0; i < out.size(); ++i) {
    for (pid_t p : all) {
      if (parent_of(p) == out[i]) out.push_back(p);
    }
  }
  out.erase(out.begin());
  return out;
}

// The command name of `pid` (/proc/PID/comm), empty if it is gone.
inline std::string comm_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

// Whether no process `pid` exists any more (reaped).
inline bool gone(pid_t pid) {
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

// Whether `pid` has exited: gone, or a zombie its parent has not reaped.
inline bool ended(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return true;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

// Milliseconds since `t`.
inline double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

inline std::uint64_t bits_of(double x) {
  std::uint64_t b = 0;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

}  // namespace zwq::test
