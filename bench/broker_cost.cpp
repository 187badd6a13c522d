// T7: what the broker itself costs. CPU of an idle broker with many connected workers (all its
// threads, ZeroMQ's I/O thread included), and resident memory per queued slice.
#include <cstdio>
#include <stdexcept>
#include <thread>

#include "cluster.hpp"
#include "process.hpp"
#include "sections.hpp"
#include "stats.hpp"

namespace zwq::bench {

namespace {

using std::chrono::milliseconds;

// Time for registrations and the first heartbeats to settle before the idle windows.
constexpr milliseconds kSettle{3000};
// Time for the broker to take in a submitted job before its memory is read.
constexpr milliseconds kAfterSubmit{500};

json idle_cpu(const BenchOptions& o) {
  BenchCluster c({.bin_dir = o.bin_dir,
                  .workers = o.idle_workers,
                  .start_timeout = std::chrono::seconds(180),
                  .nice = o.worker_nice,
                  .broker_args = o.broker_args});
  std::this_thread::sleep_for(kSettle);
  std::vector<double> pct;
  for (int r = 0; r < o.runs; ++r) {
    const auto c0 = cpu_seconds(c.broker_pid());
    Stopwatch clock;
    std::this_thread::sleep_for(std::chrono::duration<double>(o.idle_seconds));
    const auto c1 = cpu_seconds(c.broker_pid());
    if (!c0 || !c1) throw std::runtime_error("the broker exited");
    pct.push_back((*c1 - *c0) / clock.seconds() * 100);
  }
  auto workers = c.client().workers();
  const std::size_t registered = workers.ok() ? workers.value().size() : 0;
  std::fprintf(stderr, "  idle broker, %zu workers: %.3f %% of a core\n", registered,
               summarize(pct).median);
  return {{"workers", registered},
          {"window_s", o.idle_seconds},
          {"cpu_percent", to_json(summarize(pct))}};
}

// Broker RSS growth per slice when one job of `slices` slices is queued and no worker runs.
double bytes_per_queued_slice(const BenchOptions& o, const JobRequest& req, std::uint64_t slices) {
  // Stopping it with the job still queued is the point: no warning about that.
  BenchCluster c(
      {.bin_dir = o.bin_dir, .workers = 0, .log_level = "error", .broker_args = o.broker_args});
  std::this_thread::sleep_for(milliseconds(200));
  const auto before = rss_bytes(c.broker_pid());
  auto job = c.client().submit(req);
  if (!job.ok()) throw std::runtime_error("queue job: " + job.error().to_string());
  std::this_thread::sleep_for(kAfterSubmit);
  const auto after = rss_bytes(c.broker_pid());
  if (!before || !after) throw std::runtime_error("the broker exited");
  return (static_cast<double>(*after) - static_cast<double>(*before)) / static_cast<double>(slices);
}

json queued_memory(const BenchOptions& o) {
  const std::uint64_t n = o.queued_slices;
  JobRequest noop = JobRequest::range("noop_range", n);
  noop.slice_size = 1;
  auto arr = SharedArray<float>::create(unique_name("queued"), n);
  if (!arr.ok()) throw std::runtime_error(arr.error().to_string());
  JobRequest sum = JobRequest::reduce("sum", arr.value());
  sum.slice_size = 1;
  std::vector<double> noop_b, sum_b;
  for (int r = 0; r < std::max(3, o.runs); ++r) {
    noop_b.push_back(bytes_per_queued_slice(o, noop, n));
    sum_b.push_back(bytes_per_queued_slice(o, sum, n));
  }
  std::fprintf(stderr, "  broker memory per queued slice: %.1f B (noop_range), %.1f B (sum)\n",
               summarize(noop_b).median, summarize(sum_b).median);
  return {{"queued_slices", n},
          {"noop_range_bytes_per_slice", to_json(summarize(noop_b))},
          {"sum_bytes_per_slice", to_json(summarize(sum_b))}};
}

}  // namespace

json run_broker_cost(const BenchOptions& o) {
  json out;
  out["idle"] = idle_cpu(o);
  out["memory"] = queued_memory(o);
  return out;
}

}  // namespace zwq::bench
