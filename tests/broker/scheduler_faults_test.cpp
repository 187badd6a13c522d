// Scheduler under faults: leases that run out (hung or stopped workers), lost attempts and poison
// slices, suspects handed out alone, restore from the journal and the JobLog calls — without
// sockets and without sleeping (time is passed in).
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "scheduler.hpp"
#include "scheduler_harness.hpp"

using namespace zwq;
using namespace zwq::broker;
using namespace zwq::broker::test;
using namespace std::chrono_literals;

namespace {

SchedulerOptions lease_options() {
  SchedulerOptions o = test_options();
  o.lease_floor_ms = 2000;
  o.lease_factor = 10;
  o.lease_first_ms = 30000;
  o.max_lost_attempts = 3;
  return o;
}

// Reports `runs` as worker `w` would, saying its slowest slice took `slowest_us`.
ResultsTally report_timed(Harness& h, const std::string& w, const std::string& job,
                          const std::vector<SliceRun>& runs, std::uint64_t slowest_us) {
  msg::Results m;
  m.epoch = kEpoch;
  m.worker_id = w;
  m.job_id = job;
  m.slowest_us = slowest_us;
  for (const SliceRun& r : runs) {
    for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
      m.items.push_back(Harness::count_outcome(s, r.attempt));
    }
  }
  return h.sched.results(m, h.now);
}

// Keeps `workers` alive across `total` time, in steps of `step`, expiring as the server would.
void pass_alive(Harness& h, const std::vector<std::string>& workers, Millis total,
                Millis step = 500ms) {
  for (Millis t{0}; t < total; t += step) {
    h.pass(std::min(step, total - t));
    for (const auto& w : workers) h.sched.heartbeat(w, h.now);
    h.sched.expire(h.now);
  }
}

std::vector<SliceRun> runs_for(const std::vector<Dispatch>& ds, const std::string& worker) {
  std::vector<SliceRun> out;
  for (const auto& d : ds) {
    if (d.worker_id == worker) out.insert(out.end(), d.runs.begin(), d.runs.end());
  }
  return out;
}

// A JobLog that remembers what it was told.
struct FakeLog : JobLog {
  std::vector<std::string> submitted_ids;
  std::vector<std::pair<std::string, std::uint64_t>> covered_slices;
  std::vector<std::string> finished_ids;
  bool refuse = false;
  Status submitted(const Job& job) override {
    if (refuse) return make_error(ErrorCode::kInternal, "disk full");
    submitted_ids.push_back(job.spec.job_id);
    return Status::Ok();
  }
  void covered(const Job& job, std::uint64_t slice) override {
    covered_slices.emplace_back(job.spec.job_id, slice);
  }
  void finished(const Job& job) override { finished_ids.push_back(job.spec.job_id); }
};

}  // namespace

TEST_CASE("scheduler lease is lease_first until a slice finished, then follows the slowest slice",
          "[broker]") {
  Harness h(lease_options());
  const std::string job = h.submit(100);
  CHECK(h.sched.lease_for(h.job(job)) == 30000ms);
  h.hello("w1", 2);
  auto d = h.dispatch();
  report_timed(h, "w1", job, {SliceRun{0, 1, 1}}, 50);  // 50 us: the floor rules
  CHECK(h.sched.lease_for(h.job(job)) == 2000ms);
  report_timed(h, "w1", job, {SliceRun{1, 1, 1}}, 700'000);  // 0.7 s x 10
  CHECK(h.sched.lease_for(h.job(job)) == 7000ms);
  CHECK(h.status(job).lease_ms == 7000);                // what `zwq status` shows
  report_timed(h, "w1", job, {SliceRun{2, 1, 1}}, 10);  // the slowest seen still counts
  CHECK(h.sched.lease_for(h.job(job)) == 7000ms);
}

TEST_CASE("scheduler requeues at once the slices of a worker whose lease ran out, and keeps it",
          "[broker]") {
  Harness h(lease_options());
  const std::string job = h.submit(100);  // 10 slices
  h.hello("w1", 4);
  auto d = h.dispatch();
  REQUIRE(slices_in(d, "w1") == 4);
  h.pass(100ms);
  report_timed(h, "w1", job, {SliceRun{0, 1, 1}}, 1000);  // lease 2 s from now
  h.changes();

  pass_alive(h, {"w1"}, 1900ms);  // heartbeats alone do not renew a lease
  CHECK(h.status(job).retried == 0);
  pass_alive(h, {"w1"}, 200ms);
  CHECK(h.sched.has_worker("w1"));  // alive (it heartbeats), but stalled
  CHECK(h.worker("w1").state == "stalled");
  CHECK(h.worker("w1").inflight == 0);
  CHECK(h.status(job).retried == 3);
  CHECK(h.sched.counters().leases_expired == 1);
  const Changes c = h.changes();
  REQUIRE(c.losses.size() == 1);
  CHECK(c.losses[0].worker_id == "w1");
  CHECK_FALSE(c.losses[0].removed);
  CHECK_THAT(c.losses[0].cause, Catch::Contains("lease expired"));
  CHECK(h.dispatch().empty());  // a stalled worker gets nothing
  // and `zwq status` says so.
  CHECK_THAT(h.status(job).waiting,
             Catch::Contains("its workers with kernel 'count_range' are stalled"));

  // Its late outcomes are discarded and counted; having reported, it is served again.
  auto late = report_timed(h, "w1", job, {SliceRun{1, 3, 1}}, 5'000'000);
  CHECK(late.discarded == 3);
  CHECK(h.status(job).discarded == 3);
  CHECK(h.job(job).slowest_us == 1000);  // a discarded report does not stretch the lease
  CHECK(h.worker("w1").state == "idle");
  CHECK(h.status(job).waiting.empty());
  auto again = h.dispatch();
  CHECK(runs_for(again, "w1") == std::vector<SliceRun>{SliceRun{1, 1, 2}});  // a suspect, alone
}

TEST_CASE("scheduler does not hold a long slice against a worker that keeps reporting",
          "[broker]") {
  Harness h(lease_options());
  const std::string job = h.submit(100);
  h.hello("w1", 10);
  auto runs = runs_for(h.dispatch(), "w1");
  REQUIRE(!runs.empty());
  report_timed(h, "w1", job, {SliceRun{0, 1, 1}}, 1'000'000);  // 1 s slices: lease 10 s
  for (std::uint64_t s = 1; s < 5; ++s) {
    pass_alive(h, {"w1"}, 9s);
    report_timed(h, "w1", job, {SliceRun{s, 1, 1}}, 1'000'000);
  }
  CHECK(h.status(job).retried == 0);
  CHECK(h.worker("w1").state == "busy");
}

TEST_CASE("scheduler fails a job whose slice is lost with its worker max_lost_attempts times",
          "[broker]") {
  Harness h(lease_options());
  const std::string job = h.submit(100, 10, "poisoned");  // 10 slices; slice 2 kills its worker
  const std::string other = h.submit(50, 10, "innocent");
  h.hello("w1", 4);
  auto d = h.dispatch();
  REQUIRE(runs_for(d, "w1") == std::vector<SliceRun>{SliceRun{0, 4, 1}});

  // w1 dies on slice 2 without reporting 0 and 1: all four are suspects now (one loss each).
  h.pass(5100ms);
  REQUIRE(h.sched.expire(h.now) == std::vector<std::string>{"w1"});
  CHECK(h.status(job).state == JobState::kRunning);

  // Suspects go alone: w2 proves 0 and 1 innocent, then dies on 2 (its second loss).
  h.hello("w2", 4);
  for (std::uint64_t s : {0, 1}) {
    auto runs = runs_for(h.dispatch(), "w2");
    REQUIRE(runs == std::vector<SliceRun>{SliceRun{s, 1, 2}});
    CHECK(h.dispatch().empty());  // nothing else while it holds a suspect
    h.report("w2", job, runs);
  }
  REQUIRE(runs_for(h.dispatch(), "w2") == std::vector<SliceRun>{SliceRun{2, 1, 2}});
  h.pass(5100ms);
  h.hello("w3", 4);
  REQUIRE(h.sched.expire(h.now) == std::vector<std::string>{"w2"});
  CHECK(h.status(job).state == JobState::kRunning);

  // w3 dies on it too: the third loss fails the job, naming it.
  REQUIRE(runs_for(h.dispatch(), "w3") == std::vector<SliceRun>{SliceRun{2, 1, 3}});
  h.pass(1000ms);
  h.hello("w4", 4);
  h.pass(4100ms);
  h.sched.heartbeat("w4", h.now);
  REQUIRE(h.sched.expire(h.now) == std::vector<std::string>{"w3"});
  const JobStatus st = h.status(job);
  CHECK(st.state == JobState::kFailed);
  CHECK(st.error_code == ErrorCode::kKernelFailed);
  CHECK_THAT(st.error, Catch::Contains("job poisoned") && Catch::Contains("slice 2 ") &&
                           Catch::Contains("kernel 'count_range'") && Catch::Contains("3 times") &&
                           Catch::Contains("worker w3") &&
                           Catch::Contains("no heartbeat for 5100 ms"));
  CHECK(h.sched.counters().poison_slices == 1);

  // The other job goes on.
  while (h.status(other).state != JobState::kDone) {
    auto runs = runs_for(h.dispatch(), "w4");
    REQUIRE_FALSE(runs.empty());
    h.report("w4", other, runs);
  }
}

TEST_CASE("scheduler blames a stalled worker's slices too, and names the lease", "[broker]") {
  SchedulerOptions o = lease_options();
  o.max_lost_attempts = 1;
  Harness h(o);
  const std::string job = h.submit(10, 10, "hangs");  // one slice
  h.hello("w1", 1);
  h.dispatch();
  pass_alive(h, {"w1"}, 30100ms);  // no slice ever finished: lease_first
  const JobStatus st = h.status(job);
  CHECK(st.state == JobState::kFailed);
  CHECK_THAT(st.error, Catch::Contains("slice 0 ") && Catch::Contains("lease expired") &&
                           Catch::Contains("30000 ms"));
  CHECK(h.sched.has_worker("w1"));
}

TEST_CASE("scheduler sends a busy worker nothing while the oldest job has a suspect", "[broker]") {
  Harness h(lease_options());
  const std::string job = h.submit(50);  // 5 slices
  h.hello("w1", 2);
  h.hello("w2", 10);
  auto d = h.dispatch();
  REQUIRE(slices_in(d, "w1") == 2);
  REQUIRE(slices_in(d, "w2") == 3);  // busy, with credit to spare
  h.sched.lose_worker("w1", h.now);  // unreachable: its two slices are suspects
  CHECK(h.dispatch().empty());       // w2 is busy: it drains first
  h.report("w2", job, runs_for(d, "w2"));
  auto next = runs_for(h.dispatch(), "w2");
  CHECK(next == std::vector<SliceRun>{SliceRun{0, 1, 2}});
}

TEST_CASE("scheduler does not count a Bye or a re-registration as a lost attempt", "[broker]") {
  Harness h(lease_options());
  const std::string job = h.submit(100);
  h.hello("w1", 4);
  h.dispatch();
  REQUIRE(h.sched.bye("w1", h.now));
  h.hello("w2", 4);
  auto d = h.dispatch();
  CHECK(runs_for(d, "w2") == std::vector<SliceRun>{SliceRun{0, 4, 2}});  // not suspects
  h.hello("w2", 4);  // it registers again (a reconnect): its leases are requeued, unblamed
  auto again = h.dispatch();
  CHECK(runs_for(again, "w2") == std::vector<SliceRun>{SliceRun{0, 4, 3}});
  CHECK(h.status(job).retried == 8);
}

TEST_CASE("scheduler with max_lost_attempts 0 never fails a job for lost workers", "[broker]") {
  SchedulerOptions o = lease_options();
  o.max_lost_attempts = 0;
  Harness h(o);
  const std::string job = h.submit(10);
  for (int i = 0; i < 5; ++i) {
    std::string w = "w";  // not "w" + to_string(i): GCC 12 warns (-Wrestrict) on that, wrongly
    w += std::to_string(i);
    h.hello(w, 1);
    REQUIRE(slices_in(h.dispatch(), w) == 1);
    h.sched.lose_worker(w, h.now);
  }
  CHECK(h.status(job).state == JobState::kRunning);
  CHECK(h.status(job).retried == 5);
}

TEST_CASE("scheduler tells its log about accepted jobs, covered slices and finished jobs",
          "[broker]") {
  Harness h;
  FakeLog log;
  h.sched.set_log(&log);
  const std::string job = h.submit(30, 10, "logged");
  h.hello("w1", 3);
  h.report("w1", job, runs_for(h.dispatch(), "w1"));
  CHECK(log.submitted_ids == std::vector<std::string>{"logged"});
  CHECK(log.covered_slices.size() == 3);
  CHECK(log.finished_ids == std::vector<std::string>{"logged"});
  h.submit(30, 10, "logged");  // a retry: nothing new is logged
  CHECK(log.submitted_ids.size() == 1);
  REQUIRE(h.sched.cancel("logged", h.now).ok());  // final already: no second record
  CHECK(log.finished_ids.size() == 1);
}

TEST_CASE("scheduler refuses a job its log cannot write down", "[broker]") {
  Harness h;
  FakeLog log;
  log.refuse = true;
  h.sched.set_log(&log);
  JobSpec spec;
  spec.job_id = "unlogged";
  spec.kernel = "count_range";
  spec.count = 10;
  auto rep = h.sched.submit(spec, h.now);
  REQUIRE_FALSE(rep.ok());
  CHECK(rep.error().code == ErrorCode::kInternal);
  CHECK(h.sched.find_job("unlogged") == nullptr);
}

TEST_CASE(
    "scheduler restores a job from the journal: only uncovered slices run again, and the "
    "sum is bitwise that of an uninterrupted run",
    "[broker]") {
  constexpr std::uint64_t kSlices = 40;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> mant(-1.0, 1.0);
  std::uniform_int_distribution<int> expo(-40, 40);
  std::vector<double> values(kSlices);
  for (auto& v : values) v = std::ldexp(mant(rng), expo(rng));

  auto finish = [&](Harness& h) {
    h.hello("w1", 8);
    std::uint64_t computed = 0;
    while (h.status("s").state != JobState::kDone) {
      auto runs = runs_for(h.dispatch(), "w1");
      REQUIRE_FALSE(runs.empty());
      for (const SliceRun& r : runs) {
        for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
          h.report_one("w1", "s", sum_outcome(s, r.attempt, values[s]));
          ++computed;
        }
      }
    }
    return computed;
  };
  Harness whole;
  REQUIRE(whole.sched.submit(sum_spec("s", kSlices), whole.now).ok());
  CHECK(finish(whole) == kSlices);
  const double reference = whole.job("s").result.value;

  RecoveredJob r;
  r.spec = sum_spec("s", kSlices);
  for (std::uint64_t s = 0; s < kSlices; s += 3) {  // every third slice was journaled
    r.covered.emplace_back(s, CompactPartial{10, values[s], 0.0});
  }
  Harness resumed;
  REQUIRE(resumed.sched.restore(r, resumed.now).ok());
  CHECK(resumed.status("s").done == r.covered.size());
  CHECK(finish(resumed) == kSlices - r.covered.size());
  const double value = resumed.job("s").result.value;
  CHECK(std::bit_cast<std::uint64_t>(value) == std::bit_cast<std::uint64_t>(reference));
}

TEST_CASE("scheduler restores a finished job with its result and a merged count", "[broker]") {
  Harness h;
  RecoveredJob done;
  done.spec = count_spec("done", 3);
  done.state = JobState::kDone;
  done.result = JobResult{};
  done.result->value = 3;
  REQUIRE(h.sched.restore(RecoveredJob(done), h.now).ok());
  CHECK(h.status("done").state == JobState::kDone);
  CHECK(h.job("done").result.value == 3);

  RecoveredJob half;
  half.spec = done.spec;
  half.spec.job_id = "half";
  half.covered = {{0, CompactPartial{10, 0, std::bit_cast<double>(std::uint64_t{1})}}};
  Partial merged = identity_partial(Combiner::kCount);
  merged.n = 10;
  merged.count = 1;
  half.merged = merged;
  REQUIRE(h.sched.restore(RecoveredJob(half), h.now).ok());
  h.hello("w1", 5);
  auto runs = runs_for(h.dispatch(), "w1");
  CHECK(runs == std::vector<SliceRun>{SliceRun{1, 2, 1}});
  h.report("w1", "half", runs);
  CHECK(h.status("half").state == JobState::kDone);
  CHECK(h.job("half").result.value == 3);  // the restored count plus two new ones

  CHECK_FALSE(h.sched.restore(half, h.now).ok());  // the id is taken
  RecoveredJob unknown = done;
  unknown.spec.job_id = "unknown";
  unknown.spec.kernel = "no_such_kernel";
  CHECK(h.sched.restore(unknown, h.now).error().code == ErrorCode::kUnknownKernel);
  // A job refused is left whole, for the journal to keep.
  CHECK(unknown.spec.job_id == "unknown");
  CHECK(unknown.spec.kernel == "no_such_kernel");
  REQUIRE(unknown.result);
  CHECK(unknown.result->value == 3);
}

TEST_CASE("scheduler reports each lost worker once, also into a reused Changes", "[broker]") {
  Harness h(lease_options());
  h.submit(100);
  h.hello("w1", 4);
  h.dispatch();
  h.sched.lose_worker("w1", h.now);
  Changes c;
  h.sched.take_changes(c);
  REQUIRE(c.losses.size() == 1);
  CHECK(c.losses[0].requeued == 4);
  CHECK_THAT(c.losses[0].cause, Catch::Contains("unreachable"));
  h.sched.take_changes(c);  // the server reuses its buffer
  CHECK(c.losses.empty());
  h.sched.take_changes(c);
  CHECK(c.losses.empty());
}

TEST_CASE("scheduler forgives workers the time the broker itself did not run", "[broker]") {
  Harness h(lease_options());
  const std::string job = h.submit(100);
  h.hello("w1", 4);
  h.dispatch();
  report_timed(h, "w1", job, {SliceRun{0, 1, 1}}, 100);  // lease 2 s
  h.pass(4s);
  h.sched.forgive(4s);  // the broker was stopped for those 4 s
  CHECK(h.sched.expire(h.now).empty());
  CHECK(h.worker("w1").state == "busy");
  h.pass(2100ms);  // now the worker's own silence: its lease runs out
  h.sched.heartbeat("w1", h.now);
  h.sched.expire(h.now);
  CHECK(h.worker("w1").state == "stalled");
}
