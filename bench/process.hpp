// Child processes of the benchmark (the broker and workers it starts itself, the raw ZeroMQ
// peers and the Python peers) and what it reads of processes from /proc.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "child_process.hpp"

namespace zwq::bench {

// The benchmark's children are the client library's ChildProcess (it stops and reaps them, and
// they get SIGTERM if we die).
using Child = zwq::detail::ChildProcess;

enum class Output { kInherit, kDiscard, kCapture };

// Starts `path` with argv = [path, args...], its stdout inherited, discarded or captured (read it
// with Child::read_all). Throws std::runtime_error when it cannot be started.
Child spawn_child(const std::string& path, const std::vector<std::string>& args,
                  Output out = Output::kInherit);

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
