// T6: uneven workers. One of two workers is made 4x slower from outside, by running its process
// in a cgroup whose CFS quota is 25% of one CPU, and the makespan of a CPU-bound job is compared
// with the ideal balanced makespan of two workers of those measured speeds.
#include <cstdio>
#include <stdexcept>

#include "cluster.hpp"
#include "sections.hpp"
#include "stats.hpp"

namespace zwq::bench {

namespace {

using std::chrono::milliseconds;

constexpr int kSlowPercent = 25;  // of one CPU: 4x slower on CPU-bound work
constexpr std::uint64_t kSlicesPerJob = 512;
constexpr std::uint64_t kCalibrationPoints = std::uint64_t{1} << 24;

// The seconds of `runs` pi jobs of `points` points in `kSlicesPerJob` slices.
std::vector<double> pi_jobs(const BenchOptions& o, BenchCluster& c, std::uint64_t points,
                            int runs) {
  JobRequest req = JobRequest::range("pi", points);
  req.slice_size = (points + kSlicesPerJob - 1) / kSlicesPerJob;
  std::vector<double> secs;
  for (int r = 0; r < runs; ++r) {
    Stopwatch clock;
    auto res = c.client().run(req, milliseconds(static_cast<std::int64_t>(o.job_timeout_s * 1000)));
    if (!res.ok()) throw std::runtime_error("pi job: " + res.error().to_string());
    secs.push_back(clock.seconds());
  }
  return secs;
}

}  // namespace

json run_zwq_uneven(const BenchOptions& o) {
  CpuQuota quota(kSlowPercent);
  if (!quota.ok()) return {{"measured", false}, {"reason", quota.error()}};
  const double target_fast_s = o.quick ? 0.5 : 2.0;
  BenchClusterOptions base{.bin_dir = o.bin_dir,
                           .workers = 1,
                           .separate = true,
                           .nice = o.worker_nice,
                           .broker_args = o.broker_args};

  std::uint64_t points = 0;
  Summary fast, slow, both;
  {
    BenchCluster c(base);
    const double calib = summarize(pi_jobs(o, c, kCalibrationPoints, 3)).median;
    points = static_cast<std::uint64_t>(kCalibrationPoints * target_fast_s / calib);
    points = std::max<std::uint64_t>(points, kSlicesPerJob);
    fast = summarize(pi_jobs(o, c, points, o.runs));
  }
  {
    BenchClusterOptions s = base;
    s.slow_cgroup = quota.dir();
    BenchCluster c(s);
    slow = summarize(pi_jobs(o, c, points, o.runs));
  }
  {
    BenchClusterOptions b = base;
    b.workers = 2;
    b.slow_cgroup = quota.dir();
    BenchCluster c(b);
    both = summarize(pi_jobs(o, c, points, o.runs));
  }
  const double ideal = 1.0 / (1.0 / fast.median + 1.0 / slow.median);
  std::fprintf(stderr,
               "  uneven: fast alone %.3f s, slow alone %.3f s (x%.2f), both %.3f s, "
               "ideal %.3f s, ratio %.3f\n",
               fast.median, slow.median, slow.median / fast.median, both.median, ideal,
               both.median / ideal);
  return {{"measured", true},
          {"method", "worker 0 in a cgroup-v1 cpu group with cfs_quota 25% of one CPU"},
          {"kernel", "pi"},
          {"points", points},
          {"slices", kSlicesPerJob},
          {"fast_alone_s", to_json(fast)},
          {"slow_alone_s", to_json(slow)},
          {"slow_factor", slow.median / fast.median},
          {"both_s", to_json(both)},
          {"ideal_s", ideal},
          {"ratio", both.median / ideal}};
}

}  // namespace zwq::bench
