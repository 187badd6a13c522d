// Test harness for the Scheduler: a scheduler with a hand-moved clock and helpers that play the
// workers' part (Hello, Results), so tests say "5.1 s passed" instead of sleeping.
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "scheduler.hpp"

namespace zwq::broker::test {

using namespace std::chrono_literals;

inline constexpr std::uint64_t kEpoch = 77;

inline Status fake_kernel(const SliceContext&, Partial&) {
  return Status::Ok();
}

inline const KernelRegistry& test_kernels() {
  static const KernelRegistry registry = [] {
    KernelRegistry k;
    auto add = [&](const char* name, Combiner c, KernelShape s, const char* params = nullptr) {
      KernelInfo info;
      info.name = name;
      info.fn = fake_kernel;
      info.combiner = c;
      info.shape = s;
      info.params = params;
      (void)k.add(std::move(info));
    };
    add("sum", Combiner::kSum, KernelShape::kReduce);
    add("plain_sum", Combiner::kSum, KernelShape::kReduce, "");  // declares that it takes none
    add("count_range", Combiner::kCount, KernelShape::kRange);
    add("other_range", Combiner::kCount, KernelShape::kRange);
    add("gather_range", Combiner::kGather, KernelShape::kRange);
    return k;
  }();
  return registry;
}

inline SchedulerOptions test_options() {
  SchedulerOptions o;
  o.epoch = kEpoch;
  o.heartbeat_ms = 1000;
  o.liveness = 5;
  o.limits.default_slice_size = 10;
  // The bookkeeping tests hand a worker its whole credit in one batch, as soon as it has room;
  // the dispatch tests (scheduler_dispatch_test.cpp) use the pipelined, paced defaults.
  o.pipeline_depth = 1;
  o.first_batch = 1u << 30;
  return o;
}

// Dispatch as by default (pipelined batches sized by pace), with 2 ms batches, the test's epoch
// and clock.
inline SchedulerOptions dispatch_options() {
  SchedulerOptions o = test_options();
  const SchedulerOptions defaults;
  o.pipeline_depth = 2;  // the dispatch tests' numbers are worked out for double buffering
  o.first_batch = defaults.first_batch;
  o.batch_target_us = 2000;  // the dispatch tests' numbers are worked out for 2 ms batches
  o.min_batch_us = defaults.min_batch_us;
  return o;
}

// A scheduler and a hand-moved clock.
struct Harness {
  Scheduler sched;
  TimePoint now = TimePoint{} + 1000s;

  explicit Harness(SchedulerOptions o = test_options()) : sched(o, test_kernels()) {}

  void pass(Millis d) { now += d; }

  std::string submit(std::uint64_t count, std::uint64_t slice_size = 10, std::string id = {},
                     std::string kernel = "count_range") {
    JobSpec spec;
    spec.job_id = std::move(id);
    spec.kernel = std::move(kernel);
    spec.count = count;
    spec.slice_size = slice_size;
    auto rep = sched.submit(spec, now);
    REQUIRE(rep.ok());
    return rep.value().job_id;
  }

  void hello(const std::string& id, std::uint32_t credit, std::vector<std::string> kernels = {}) {
    msg::Hello h;
    h.worker_id = id;
    h.credit = credit;
    h.kernels = std::move(kernels);
    REQUIRE(sched.hello(h, now) != HelloVerdict::kRejected);
  }

  std::vector<Dispatch> dispatch() {
    std::vector<Dispatch> out;
    sched.dispatch(out, now);
    return out;
  }

  // Reports success for every slice of `runs`, as worker `worker` would, the slowest of them
  // having taken `slowest_us` (0: not said).
  ResultsTally report(const std::string& worker, const std::string& job,
                      const std::vector<SliceRun>& runs, std::uint64_t slowest_us = 0) {
    msg::Results m = results_message(worker, job, runs, slowest_us);
    return sched.results(m, now);
  }

  // The Results of report(), unsent.
  static msg::Results results_message(const std::string& worker, const std::string& job,
                                      const std::vector<SliceRun>& runs,
                                      std::uint64_t slowest_us = 0) {
    msg::Results m;
    m.epoch = kEpoch;
    m.worker_id = worker;
    m.job_id = job;
    m.slowest_us = slowest_us;
    for (const SliceRun& r : runs) {
      for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
        m.items.push_back(count_outcome(s, r.attempt));
      }
    }
    return m;
  }

  ResultsTally report_one(const std::string& worker, const std::string& job, SliceOutcome o) {
    msg::Results m;
    m.epoch = kEpoch;
    m.worker_id = worker;
    m.job_id = job;
    m.items.push_back(std::move(o));
    return sched.results(m, now);
  }

  static SliceOutcome count_outcome(std::uint64_t slice, std::uint32_t attempt) {
    SliceOutcome o;
    o.slice = slice;
    o.attempt = attempt;
    o.partial = identity_partial(Combiner::kCount);
    o.partial.n = 10;
    o.partial.count = 1;
    return o;
  }

  const Job& job(const std::string& id) const {
    const Job* j = sched.find_job(id);
    REQUIRE(j != nullptr);
    return *j;
  }

  JobStatus status(const std::string& id) const { return sched.status(job(id), now); }

  WorkerStatus worker(const std::string& id) const {
    for (auto& w : sched.workers(now)) {
      if (w.worker_id == id) return w;
    }
    FAIL("no worker " << id);
    return {};
  }

  Changes changes() {
    Changes c;
    sched.take_changes(c);
    return c;
  }
};

inline std::vector<SliceRun> runs_of(const std::vector<Dispatch>& ds, const std::string& worker) {
  std::vector<SliceRun> runs;
  for (const auto& d : ds) {
    if (d.worker_id == worker) runs.insert(runs.end(), d.runs.begin(), d.runs.end());
  }
  return runs;
}

inline std::uint64_t slices_in(const std::vector<Dispatch>& ds, const std::string& worker = {}) {
  std::uint64_t n = 0;
  for (const auto& d : ds) {
    if (!worker.empty() && d.worker_id != worker) continue;
    for (const auto& r : d.runs) n += r.count;
  }
  return n;
}

// A job of `slices` slices of 10 f64 elements of the sum kernel (its dataset is never read).
inline JobSpec sum_spec(const std::string& id, std::uint64_t slices) {
  JobSpec spec;
  spec.job_id = id;
  spec.kernel = "sum";
  spec.input.uri = "shm:x";
  spec.input.dtype = DType::kF64;
  spec.count = slices * 10;
  spec.slice_size = 10;
  return spec;
}

// A job of `slices` slices of 10 points of the count_range kernel.
inline JobSpec count_spec(const std::string& id, std::uint64_t slices) {
  JobSpec spec;
  spec.job_id = id;
  spec.kernel = "count_range";
  spec.count = slices * 10;
  spec.slice_size = 10;
  return spec;
}

// A worker's outcome for slice `slice` of a sum_spec job whose sum is `value`.
// A gather_range slice's outcome: n = 10 elements, `bytes` gathered.
inline SliceOutcome gather_outcome(std::uint64_t slice, std::uint32_t attempt, std::string bytes) {
  SliceOutcome o;
  o.slice = slice;
  o.attempt = attempt;
  o.partial = identity_partial(Combiner::kGather);
  o.partial.n = 10;
  o.partial.bytes = std::move(bytes);
  return o;
}

inline SliceOutcome sum_outcome(std::uint64_t slice, std::uint32_t attempt, double value) {
  SliceOutcome o;
  o.slice = slice;
  o.attempt = attempt;
  o.partial = identity_partial(Combiner::kSum);
  o.partial.n = 10;
  o.partial.hi = value;
  return o;
}

// `n` doubles of random signs and magnitudes 2^-40 to 2^40: sums of them depend on the order.
inline std::vector<double> random_values(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> mant(-1.0, 1.0);
  std::uniform_int_distribution<int> expo(-40, 40);
  std::vector<double> v(n);
  for (auto& x : v) x = std::ldexp(mant(rng), expo(rng));
  return v;
}

}  // namespace zwq::broker::test
