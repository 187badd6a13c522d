// zwq summing the array (T1, T2): the same 1 GiB f32 array and the same kernel as the in-process
// baseline, through a broker and 1 or 2 worker processes started by LocalCluster.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_array.hpp"
#include "process.hpp"
#include "sections.hpp"
#include "stats.hpp"
#include "thread_time.hpp"
#include "zwq/client.hpp"

namespace zwq::bench {

namespace {

using std::chrono::milliseconds;

// The slice size of warm-up jobs and of the cold pass: the broker's default (1 MiB of f32).
constexpr std::uint64_t kDefaultSliceElems = 262144;
// The in-process pass measured beside each job: 4 MiB slices, inside the BW sweep (256 KiB-64
// MiB), whatever the job's slice size, so that small slices are not flattered by a baseline
// that pays the same per-slice cost.
constexpr std::uint64_t kBesideSliceElems = 1048576;

LocalCluster start_cluster(const BenchOptions& o, int workers) {
  return LocalCluster({.workers = workers,
                       .bin_dir = o.bin_dir,
                       .start_timeout = milliseconds(30000),
                       .request_timeout = milliseconds(30000),
                       .worker_nice = o.worker_nice,
                       .broker_args = o.broker_args});
}

milliseconds job_timeout(const BenchOptions& o) {
  return milliseconds(static_cast<std::int64_t>(o.job_timeout_s * 1000));
}

// One sum job, submit to result; its seconds, or an exception naming what failed.
double timed_job(const BenchOptions& o, Client& client, const DatasetRef& ref,
                 std::uint64_t slice_elems, double expected) {
  JobRequest req;
  req.kernel = "sum";
  req.input = ref;
  req.slice_size = slice_elems;
  Stopwatch clock;
  auto r = client.run(req, job_timeout(o));
  const double s = clock.seconds();
  if (!r.ok()) throw std::runtime_error("zwq sum job: " + r.error().to_string());
  if (std::abs(r.value().value - expected) > 1e-12 * std::abs(expected)) {
    throw std::runtime_error("zwq sum job: wrong sum " + std::to_string(r.value().value));
  }
  return s;
}

// The compute threads of the cluster's workers: the `workers` threads of our zwq-worker
// descendants that ran longest (call it after a few jobs). Empty when they cannot be read.
std::vector<ThreadTime> compute_threads(int workers) {
  std::vector<ThreadTime> all;
  // zwq-worker --count N runs its workers as child processes of its own. The walk stops after
  // kMaxProcesses, a bound far above the two workers the bench starts.
  constexpr std::size_t kMaxProcesses = 64;
  std::vector<pid_t> todo = children_of(::getpid());
  for (std::size_t i = 0; i < todo.size() && i < kMaxProcesses; ++i) {
    std::ifstream comm("/proc/" + std::to_string(todo[i]) + "/comm");
    std::string name;
    if (!std::getline(comm, name) || name != "zwq-worker") continue;
    for (const ThreadTime& t : thread_times(todo[i])) all.push_back(t);
    for (pid_t c : children_of(todo[i])) todo.push_back(c);
  }
  auto top = busiest(std::move(all), workers);
  if (top.size() != static_cast<std::size_t>(workers)) top.clear();
  return top;
}

// The time on a CPU, and waiting for one, of `threads` so far, in seconds (summed).
struct CpuSeconds {
  double on_cpu = 0, waiting = 0;
};
CpuSeconds cpu_seconds(const std::vector<ThreadTime>& threads) {
  CpuSeconds s;
  for (const ThreadTime& t : threads) {
    const SchedStat st = thread_sched_stat(t.pid, t.tid);
    s.on_cpu += static_cast<double>(st.on_cpu_ns) * 1e-9;
    s.waiting += static_cast<double>(st.waiting_ns) * 1e-9;
  }
  return s;
}

}  // namespace

json run_zwq_sum(const BenchOptions& o, const SharedArray<float>& x, double expected) {
  const double bytes = static_cast<double>(x.size()) * 4;
  json rows = json::array();
  for (int w = 1; w <= o.workers; ++w) {
    LocalCluster cluster = start_cluster(o, w);
    Client& client = cluster.client();
    for (int i = 0; i < 2; ++i) (void)timed_job(o, client, x.ref(), kDefaultSliceElems, expected);
    // Where each job's time goes: the share of its wall time the compute threads ran and the
    // share they waited for a CPU (the means of theirs; the rest they slept: before the job
    // reached them, after their last Results, or waiting for Tasks), and the rate they read at
    // while running, against the same baseline.
    const std::vector<ThreadTime> computing = compute_threads(w);
    // Run by run, every slice size in turn, as the in-process baseline is taken (bandwidth.cpp):
    // a few seconds of a busy host then slow one run of several sizes, not the median of one.
    // Each job sits between two in-process passes with as many threads as workers (the pass
    // before the next job is this one's after): the mean of the two is the job's baseline, and
    // its ratio to that the figure (T1). The jobs are short, so there are 3 x --runs of them.
    const std::size_t sizes = o.slice_bytes.size();
    std::vector<std::vector<double>> gbps(sizes), beside(sizes), ratio(sizes), busy(sizes),
        busy_ratio(sizes), waited(sizes), asleep(sizes);
    std::vector<std::string> failed(sizes);  // a size whose job failed is run no more
    struct Pending {
      std::size_t row;
      double gbps, before;
      double busy_share, busy_gbps, wait_share;  // NaN without the compute threads' times
    };
    std::optional<Pending> pending;
    auto pass = [&] {
      const double bw = inprocess_sum_gbps(x, w, kBesideSliceElems);
      if (pending) {
        const double base = (pending->before + bw) / 2;
        gbps[pending->row].push_back(pending->gbps);
        beside[pending->row].push_back(base);
        ratio[pending->row].push_back(pending->gbps / base);
        if (!std::isnan(pending->busy_share)) {
          busy[pending->row].push_back(pending->busy_share);
          busy_ratio[pending->row].push_back(pending->busy_gbps / base);
          waited[pending->row].push_back(pending->wait_share);
          asleep[pending->row].push_back(1 - pending->busy_share - pending->wait_share);
        }
        pending.reset();
      }
      return bw;
    };
    for (int r = 0; r < o.sum_runs(); ++r) {
      for (std::size_t i = 0; i < sizes; ++i) {
        if (!failed[i].empty()) continue;
        try {
          const double before = pass();
          const CpuSeconds cpu0 = cpu_seconds(computing);
          const double s = timed_job(o, client, x.ref(), o.slice_bytes[i] / 4, expected);
          const CpuSeconds cpu1 = cpu_seconds(computing);
          const double ran = (cpu1.on_cpu - cpu0.on_cpu) / w;
          const double wait = (cpu1.waiting - cpu0.waiting) / w;
          const double nan = std::numeric_limits<double>::quiet_NaN();
          pending = Pending{i,
                            bytes / s / 1e9,
                            before,
                            ran > 0 ? ran / s : nan,
                            ran > 0 ? bytes / ran / 1e9 : nan,
                            ran > 0 ? wait / s : nan};
        } catch (const std::exception& e) {
          failed[i] = e.what();
        }
      }
    }
    (void)pass();  // the last job's after
    for (std::size_t i = 0; i < sizes; ++i) {
      const std::uint64_t sb = o.slice_bytes[i];
      if (!failed[i].empty()) {
        std::fprintf(stderr, "  zwq sum, %d workers, %llu B slices: %s\n", w,
                     static_cast<unsigned long long>(sb), failed[i].c_str());
        rows.push_back({{"workers", w}, {"slice_bytes", sb}, {"error", failed[i]}});
        continue;
      }
      json row{{"workers", w},
               {"slice_bytes", sb},
               {"gbps", to_json(summarize(gbps[i]))},
               {"bw_beside_gbps", to_json(summarize(beside[i]))},
               {"ratio_to_bw_beside", to_json(summarize(ratio[i]))}};
      if (!busy[i].empty()) {
        row["compute_busy_share"] = to_json(summarize(busy[i]));
        row["compute_rate_ratio_to_bw_beside"] = to_json(summarize(busy_ratio[i]));
        row["compute_wait_share"] = to_json(summarize(waited[i]));
        row["compute_asleep_share"] = to_json(summarize(asleep[i]));
      }
      rows.push_back(std::move(row));
      std::fprintf(stderr, "  zwq sum, %d workers, %8llu B slices: %.2f GB/s (BW%d beside: %.2f)\n",
                   w, static_cast<unsigned long long>(sb), summarize(gbps[i]).median, w,
                   summarize(beside[i]).median);
    }
  }
  return rows;
}

json run_zwq_cold(const BenchOptions& o) {
  const std::uint64_t n = o.array_elems();
  const double expected = pattern_sum(n);
  json out = json::array();
  for (int w : o.worker_counts()) {
    LocalCluster cluster = start_cluster(o, w);
    {  // connections and code paths warm; the data is what is cold
      auto small = SharedArray<float>::create(unique_name("warmup"), 1 << 20);
      if (!small.ok()) throw std::runtime_error(small.error().to_string());
      fill_pattern(small.value().data(), small.value().size());
      (void)timed_job(o, cluster.client(), small.value().ref(), kDefaultSliceElems,
                      pattern_sum(small.value().size()));
    }
    std::vector<double> secs;
    for (int r = 0; r < o.runs; ++r) {
      BenchArray<float> a("zwqcold", n);
      fill_pattern(a.array().data(), n);
      secs.push_back(timed_job(o, cluster.client(), a.array().ref(), kDefaultSliceElems, expected));
    }
    out.push_back({{"workers", w},
                   {"slice_bytes", kDefaultSliceElems * 4},
                   {"first_pass_s", to_json(summarize(secs))}});
    std::fprintf(stderr, "  zwq cold first pass, %d workers: %.3f s\n", w, summarize(secs).median);
  }
  return out;
}

}  // namespace zwq::bench
