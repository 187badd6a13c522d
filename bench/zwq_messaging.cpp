// zwq's messaging costs (T3, T4, T5): jobs whose slices do no work, so that what is measured is
// dispatch, transport, collection and the client round trips.
#include <cstdio>
#include <stdexcept>

#include "cluster.hpp"
#include "process.hpp"
#include "sections.hpp"
#include "stats.hpp"
#include "zwq/client.hpp"

namespace zwq::bench {

namespace {

using std::chrono::milliseconds;

// Single-slice jobs before the timed ones (connections, allocator and caches settle).
constexpr int kLatencyWarmup = 200;

milliseconds job_timeout(const BenchOptions& o) {
  return milliseconds(static_cast<std::int64_t>(o.job_timeout_s * 1000));
}

// One job of `slices` no-op slices of one point each; its seconds.
double noop_job(const BenchOptions& o, Client& client, std::uint64_t slices) {
  JobRequest req = JobRequest::range("noop_range", slices);
  req.slice_size = 1;
  Stopwatch clock;
  auto r = client.run(req, job_timeout(o));
  const double s = clock.seconds();
  if (!r.ok()) throw std::runtime_error("no-op job: " + r.error().to_string());
  if (r.value().merged.count != slices) throw std::runtime_error("no-op job: wrong count");
  return s;
}

}  // namespace

// CPU time and context switches of a group of processes, for the per-slice breakdown.
struct Usage {
  double cpu_s = 0;
  double switches = 0;
};

Usage usage_of(const std::vector<pid_t>& pids) {
  Usage u;
  for (pid_t p : pids) {
    u.cpu_s += cpu_seconds(p).value_or(0);
    u.switches += static_cast<double>(context_switches(p).value_or(0));
  }
  return u;
}

json run_zwq_noop(const BenchOptions& o) {
  json rows = json::array();
  for (std::uint32_t batch : o.batches) {
    // The workers' default credit; the broker cuts what they hold into messages of at most
    // `batch` slices (the largest is the default: no limit but the credit).
    BenchCluster cluster({.bin_dir = o.bin_dir,
                          .workers = o.workers,
                          .max_batch = batch >= o.default_credit ? 0 : batch,
                          .nice = o.worker_nice,
                          .broker_args = o.broker_args});
    const std::vector<pid_t> broker{cluster.broker_pid()};
    const std::vector<pid_t> workers = cluster.worker_pids();
    std::vector<double> rates, raw, b_cpu, w_cpu, b_sw, w_sw;
    try {
      (void)noop_job(o, cluster.client(), std::min<std::uint64_t>(o.noop_slices, 10000));
      for (int r = 0; r < o.runs; ++r) {
        // The baseline right before each run: same machine state, same moment.
        raw.push_back(raw_pushpull_rate("ipc", o.pushpull_messages));
        const Usage b0 = usage_of(broker), w0 = usage_of(workers);
        const double s = noop_job(o, cluster.client(), o.noop_slices);
        const Usage b1 = usage_of(broker), w1 = usage_of(workers);
        const double n = static_cast<double>(o.noop_slices);
        rates.push_back(n / s);
        b_cpu.push_back((b1.cpu_s - b0.cpu_s) / n * 1e6);
        w_cpu.push_back((w1.cpu_s - w0.cpu_s) / n * 1e6);
        b_sw.push_back((b1.switches - b0.switches) / n);
        w_sw.push_back((w1.switches - w0.switches) / n);
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "  zwq no-op, batch %u: %s\n", batch, e.what());
      rows.push_back({{"max_batch", batch}, {"error", e.what()}});
      continue;
    }
    rows.push_back({{"max_batch", batch},
                    {"credit", o.default_credit},
                    {"workers", o.workers},
                    {"slices", o.noop_slices},
                    {"slices_per_s", to_json(summarize(rates))},
                    {"raw_pushpull_ipc_msgs_per_s", to_json(summarize(raw))},
                    {"broker_cpu_us_per_slice", to_json(summarize(b_cpu))},
                    {"workers_cpu_us_per_slice", to_json(summarize(w_cpu))},
                    {"broker_switches_per_slice", to_json(summarize(b_sw))},
                    {"workers_switches_per_slice", to_json(summarize(w_sw))}});
    std::fprintf(stderr,
                 "  zwq no-op, %d workers, batch %5u: %.0f slices/s; per slice: broker %.2f us "
                 "CPU, %.2f switches; workers %.2f us CPU, %.2f switches\n",
                 o.workers, batch, summarize(rates).median, summarize(b_cpu).median,
                 summarize(b_sw).median, summarize(w_cpu).median, summarize(w_sw).median);
  }
  return rows;
}

// Single-slice jobs one after the other with Client::run: one round trip each, the broker
// holding the SubmitRep until the job is done (SubmitReq.wait_ms).
json run_zwq_latency(const BenchOptions& o) {
  LocalCluster cluster({.workers = o.workers,
                        .bin_dir = o.bin_dir,
                        .worker_nice = o.worker_nice,
                        .broker_args = o.broker_args});
  Client& client = cluster.client();
  const JobRequest req = JobRequest::range("noop_range", 1);
  auto one = [&] {
    Stopwatch clock;
    auto r = client.run(req, job_timeout(o));
    if (!r.ok()) throw std::runtime_error("single-slice job: " + r.error().to_string());
    return clock.seconds() * 1e6;
  };
  // For the breakdown: one control round trip through the broker that starts no job.
  auto control = [&] {
    Stopwatch clock;
    if (!client.workers().ok()) throw std::runtime_error("WorkersReq failed");
    return clock.seconds() * 1e6;
  };
  for (int i = 0; i < kLatencyWarmup; ++i) (void)one(), (void)control();
  std::vector<double> p50, p99, c50, c99, raw50, raw99;
  for (int r = 0; r < o.runs; ++r) {
    // The baseline right before each run: same machine state, same moment.
    const auto raw = raw_reqrep_us("ipc", o.reqrep_samples);
    raw50.push_back(percentile(raw, 50));
    raw99.push_back(percentile(raw, 99));
    std::vector<double> us, cus;
    for (int i = 0; i < o.latency_samples; ++i) us.push_back(one());
    for (int i = 0; i < o.latency_samples; ++i) cus.push_back(control());
    p50.push_back(percentile(us, 50));
    p99.push_back(percentile(us, 99));
    c50.push_back(percentile(cus, 50));
    c99.push_back(percentile(cus, 99));
  }
  std::fprintf(stderr,
               "  zwq single-slice job: p50 %.1f us, p99 %.1f us (control round trip p50 %.1f us, "
               "raw REQ/REP beside it p50 %.1f us)\n",
               summarize(p50).median, summarize(p99).median, summarize(c50).median,
               summarize(raw50).median);
  return {{"kernel", "noop_range"},
          {"workers", o.workers},
          {"jobs_per_run", o.latency_samples},
          {"p50_us", to_json(summarize(p50))},
          {"p99_us", to_json(summarize(p99))},
          {"control_rtt_p50_us", to_json(summarize(c50))},
          {"control_rtt_p99_us", to_json(summarize(c99))},
          {"raw_reqrep_ipc_p50_us", to_json(summarize(raw50))},
          {"raw_reqrep_ipc_p99_us", to_json(summarize(raw99))}};
}

// 10^5 independent single-slice jobs from one client, as a user would run them: Client::run_many,
// which submits them in windows (SubmitManyReqs of 512 jobs, the next sent while the broker
// makes the last) and collects each window with WaitManyReqs, the window's WaitMany sent before
// the next window's submits so that its answer is ready when they are done. Every job's own
// result is checked.
json run_zwq_async(const BenchOptions& o) {
  LocalCluster cluster({.workers = o.workers,
                        .bin_dir = o.bin_dir,
                        .worker_nice = o.worker_nice,
                        .broker_args = o.broker_args});
  Client& client = cluster.client();
  auto registered = client.workers();
  const std::uint64_t window =
      Client::run_many_window(registered.ok() ? registered.value().size() : 0);
  const std::vector<JobRequest> requests(o.async_jobs, JobRequest::range("noop_range", 1));
  std::vector<double> rates;
  std::uint64_t failures = 0;
  for (int r = 0; r < o.runs; ++r) {
    Stopwatch clock;
    const auto results = client.run_many(requests, job_timeout(o));
    const double s = clock.seconds();
    for (const auto& res : results) {
      // Each job is one no-op point: its own result counts exactly that point.
      failures += !res.ok() || res.value().merged.count != 1;
    }
    failures += o.async_jobs - std::min<std::uint64_t>(o.async_jobs, results.size());
    rates.push_back(static_cast<double>(o.async_jobs) / s);
  }
  std::fprintf(stderr, "  zwq async small jobs: %.0f jobs/s (%llu failed)\n",
               summarize(rates).median, static_cast<unsigned long long>(failures));
  return {{"kernel", "noop_range"},
          {"workers", o.workers},
          {"jobs", o.async_jobs},
          {"window", window},
          {"api", "run_many"},
          {"failures", failures},
          {"jobs_per_s", to_json(summarize(rates))}};
}

}  // namespace zwq::bench
