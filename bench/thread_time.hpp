// The CPU time of single threads, for splitting a sum job's wall time into the time its workers'
// compute threads ran, waited for a CPU and slept (the table "Where a job's time goes" in the
// report).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace zwq::bench {

struct ThreadTime {
  pid_t pid = 0;
  pid_t tid = 0;
  std::uint64_t on_cpu_ns = 0;  // /proc/PID/task/TID/schedstat, first field
};

// A thread's two clocks in /proc/PID/task/TID/schedstat: time on a CPU, and time runnable but
// waiting on a run queue for one (preempted, or woken while its CPU ran something else).
struct SchedStat {
  std::uint64_t on_cpu_ns = 0;
  std::uint64_t waiting_ns = 0;
};

// The thread ids of `pid` (/proc/PID/task); empty if the process is gone.
std::optional<std::vector<pid_t>> task_ids(pid_t pid);

// Every thread of `pid` with its time on a CPU so far; empty if the process is gone.
std::vector<ThreadTime> thread_times(pid_t pid);

// The time on a CPU of one thread so far, or 0 if it is gone.
std::uint64_t thread_on_cpu_ns(pid_t pid, pid_t tid);

// Both clocks of one thread so far; zeros if it is gone.
SchedStat thread_sched_stat(pid_t pid, pid_t tid);

// The `n` threads of `threads` that ran longest, longest first (fewer if there are fewer). After
// a few sum jobs these are a worker's compute threads: the others only pass messages.
std::vector<ThreadTime> busiest(std::vector<ThreadTime> threads, int n);

}  // namespace zwq::bench
