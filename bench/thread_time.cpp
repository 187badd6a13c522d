#include "thread_time.hpp"

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <string>

namespace zwq::bench {

SchedStat thread_sched_stat(pid_t pid, pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/schedstat");
  SchedStat s;
  if (!(in >> s.on_cpu_ns >> s.waiting_ns)) return {};
  return s;
}

std::uint64_t thread_on_cpu_ns(pid_t pid, pid_t tid) {
  return thread_sched_stat(pid, tid).on_cpu_ns;
}

std::optional<std::vector<pid_t>> task_ids(pid_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (d == nullptr) return std::nullopt;
  std::vector<pid_t> out;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') out.push_back(static_cast<pid_t>(std::stol(e->d_name)));
  }
  ::closedir(d);
  return out;
}

std::vector<ThreadTime> thread_times(pid_t pid) {
  std::vector<ThreadTime> out;
  for (pid_t tid : task_ids(pid).value_or(std::vector<pid_t>{})) {
    out.push_back({pid, tid, thread_on_cpu_ns(pid, tid)});
  }
  return out;
}

std::vector<ThreadTime> busiest(std::vector<ThreadTime> threads, int n) {
  std::stable_sort(threads.begin(), threads.end(), [](const ThreadTime& a, const ThreadTime& b) {
    return a.on_cpu_ns > b.on_cpu_ns;
  });
  if (n >= 0 && threads.size() > static_cast<std::size_t>(n)) {
    threads.resize(static_cast<std::size_t>(n));
  }
  return threads;
}

}  // namespace zwq::bench
