// Scheduler dispatch: pipelined batches sized by each worker's observed pace, and tails shared by
// speed (docs/PROTOCOL.md, "Credit"). Socket-free; time is passed in.
#include <catch2/catch.hpp>
#include <optional>

#include "scheduler.hpp"
#include "scheduler_harness.hpp"

using namespace zwq;
using namespace zwq::broker;
using namespace std::chrono_literals;
using namespace zwq::broker::test;

namespace {

std::vector<std::uint64_t> batch_sizes(const std::vector<Dispatch>& ds, const std::string& w) {
  std::vector<std::uint64_t> sizes;
  for (const Dispatch& d : ds) {
    if (d.worker_id == w) sizes.push_back(slices_in({d}));
  }
  return sizes;
}

// Dispatches the first batches of `job` to `worker` and reports them all as taking
// `slowest_us` each: the worker's pace on the job is then `slowest_us`.
void pace(Harness& h, const std::string& worker, const std::string& job, std::uint64_t slowest_us) {
  auto d = h.dispatch();
  REQUIRE(slices_in(d, worker) > 0);
  h.report(worker, job, runs_of(d, worker), slowest_us);
}

}  // namespace

TEST_CASE("scheduler sends a worker its next batch before it reports the one in hand", "[broker]") {
  Harness h(dispatch_options());
  const std::string job = h.submit(100000);  // 10,000 slices
  h.hello("w1", 64);

  // Nothing is known of the job's slices yet: one small batch.
  auto first = h.dispatch();
  CHECK(batch_sizes(first, "w1") == std::vector<std::uint64_t>{4});

  // The report says 100 µs a slice: batches of 20 (2 ms), pipeline_depth (2) of them in flight,
  // so that the worker never waits for the broker between batches.
  h.report("w1", job, first[0].runs, 100);
  REQUIRE(h.worker("w1").inflight == 0);
  auto next = h.dispatch();
  CHECK(batch_sizes(next, "w1") == std::vector<std::uint64_t>{20, 20});
  CHECK(h.worker("w1").inflight == 40);

  // Reporting a batch frees room for the next, in whole batches: a report of 4 slices leaves
  // them waiting until they make half a batch, rather than travelling as a message of 4.
  const SliceRun run = next[0].runs.at(0);
  h.report("w1", job, {SliceRun{run.first_slice, 4, run.attempt}}, 100);
  CHECK(h.dispatch().empty());
  h.report("w1", job, {SliceRun{run.first_slice + 4, run.count - 4, run.attempt}}, 100);
  auto refill = h.dispatch();
  CHECK(batch_sizes(refill, "w1") == std::vector<std::uint64_t>{20});
  CHECK(h.worker("w1").inflight == 40);
}

// Long slices would otherwise go out several batches at a time before anyone knows they are
// long: 16 slices over two workers, with a pipeline of 4 batches of 4, were all leased at once,
// and the job's end then waited for the slower worker's last few (64 MiB slices of a sum).
TEST_CASE(
    "scheduler leases one batch of a job of unknown pace per worker, so a short job of long "
    "slices is shared by speed once its pace is known",
    "[broker]") {
  SchedulerOptions o = dispatch_options();
  o.pipeline_depth = 4;
  Harness h(o);
  const std::string job = h.submit(160);  // 16 slices
  h.hello("w1", 64);
  h.hello("w2", 64);
  auto d = h.dispatch();
  CHECK(slices_in(d, "w1") == 4);
  CHECK(slices_in(d, "w2") == 4);
  CHECK(h.job(job).pending.size() == 8);
  CHECK(h.dispatch().empty());  // nothing more until a report

  // w1 reports: 5 ms a slice, so batches are of one slice and a worker holds 4. w1 takes its
  // share of what is left; w2, still holding 4, waits for its own report.
  h.report("w1", job, runs_of(d, "w1"), 5000);
  auto more = h.dispatch();
  CHECK(slices_in(more, "w1") > 0);
  CHECK(slices_in(more, "w1") <= 4);
  CHECK(slices_in(more, "w2") == 0);
  CHECK(h.job(job).pending.size() >= 4);
}

TEST_CASE("scheduler sends the credit as one batch when its halves would be too little work",
          "[broker]") {
  Harness h(dispatch_options());
  const std::string job = h.submit(100000);
  h.hello("w1", 64);
  pace(h, "w1", job, 1);  // 32 slices of 1 µs: far below min_batch_us
  auto d = h.dispatch();
  CHECK(batch_sizes(d, "w1") == std::vector<std::uint64_t>{64});
}

TEST_CASE(
    "scheduler cuts batches into Tasks messages of at most max_batch slices, "
    "holding the worker as full as without the limit",
    "[broker]") {
  SchedulerOptions o = dispatch_options();
  o.max_batch = 1;
  Harness h(o);
  const std::string job = h.submit(100000);
  h.hello("w1", 64);
  pace(h, "w1", job, 1);  // tiny slices: the credit goes out at once
  auto d = h.dispatch();
  CHECK(batch_sizes(d, "w1") == std::vector<std::uint64_t>(64, 1));
  CHECK(h.worker("w1").inflight == 64);

  // Every report is its own Results; the freed slices go out again one per message.
  h.report("w1", job, d[0].runs, 1);
  h.report("w1", job, d[1].runs, 1);
  h.report("w1", job, d[2].runs, 1);
  h.report("w1", job, d[3].runs, 1);
  auto refill = h.dispatch();
  CHECK(batch_sizes(refill, "w1") == std::vector<std::uint64_t>(4, 1));
  CHECK(h.worker("w1").inflight == 64);
}

TEST_CASE(
    "scheduler cuts each worker's batch into max_batch messages of neighbouring slices, not "
    "interleaved with the other workers'",
    "[broker]") {
  SchedulerOptions o = dispatch_options();
  o.max_batch = 4;
  Harness h(o);
  const std::string job = h.submit(100000);
  h.hello("w1", 64);
  h.hello("w2", 64);
  auto first = h.dispatch();
  h.report("w1", job, runs_of(first, "w1"), 1);  // tiny slices: the credit goes out at once
  h.report("w2", job, runs_of(first, "w2"), 1);
  auto d = h.dispatch();
  for (const std::string w : {"w1", "w2"}) {
    INFO(w);
    CHECK(h.worker(w).inflight == 64);
    std::optional<std::uint64_t> next;  // where the worker's next message should start
    for (const Dispatch& x : d) {
      if (x.worker_id != w) continue;
      CHECK(slices_in({x}) <= 4);
      for (const SliceRun& r : x.runs) {
        if (next) CHECK(r.first_slice == *next);
        next = r.first_slice + r.count;
      }
    }
  }
}

TEST_CASE("scheduler sizes batches by the observed time per slice", "[broker]") {
  // {slowest_us reported, slices per batch}: batch_target_us (2 ms) of work, at least one
  // slice, at most credit / pipeline_depth.
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> table = {
      {2, 512}, {10, 200}, {100, 20}, {1000, 2}, {5000, 1}};
  for (const auto& [slowest, batch] : table) {
    INFO(slowest << " us a slice");
    Harness h(dispatch_options());
    const std::string job = h.submit(1000000);
    h.hello("w1", 1024);
    pace(h, "w1", job, slowest);
    CHECK(h.sched.slice_us("w1", h.job(job)) == Approx(static_cast<double>(slowest)));
    auto d = h.dispatch();
    REQUIRE_FALSE(d.empty());
    for (std::uint64_t n : batch_sizes(d, "w1")) CHECK(n == batch);
    CHECK(h.worker("w1").inflight == 2 * batch);  // pipeline_depth batches in flight
  }
}

TEST_CASE("scheduler leaves a worker of slow slices only a few, whatever its credit", "[broker]") {
  Harness h(dispatch_options());
  const std::string job = h.submit(100000);
  h.hello("w1", 64);
  pace(h, "w1", job, 1000);  // 1 ms a slice: batches of 2
  h.dispatch();
  CHECK(h.worker("w1").inflight == 4);  // two batches of 2 ms, not 64 slices
  CHECK(h.dispatch().empty());
}

TEST_CASE("scheduler never leases a worker more than its credit, however fast its slices",
          "[broker]") {
  Harness h(dispatch_options());
  const std::string job = h.submit(100000);
  h.hello("w1", 3);
  auto d = h.dispatch();
  CHECK(h.worker("w1").inflight == 3);
  h.report("w1", job, runs_of(d, "w1"), 1);  // 1 µs a slice: 2000 would fit in a batch
  for (int i = 0; i < 3; ++i) {
    d = h.dispatch();
    CHECK(h.worker("w1").inflight == 3);
    h.report("w1", job, runs_of(d, "w1"), 1);
  }
}

TEST_CASE("scheduler learns the pace from the time between reports when one slice was held up",
          "[broker]") {
  Harness h(dispatch_options());
  const std::string job = h.submit(1000000);
  h.hello("w1", 1024);
  auto d = h.dispatch();
  REQUIRE(slices_in(d, "w1") == 4);
  // 4 slices in 1 ms, although one of them took 50 ms by the worker's clock (it was preempted,
  // say, and its time overlapped the others'): 250 µs a slice, batches of 8.
  h.pass(1ms);
  h.report("w1", job, runs_of(d, "w1"), 50000);
  CHECK(h.sched.slice_us("w1", h.job(job)) == Approx(250));
  auto next = h.dispatch();
  for (std::uint64_t n : batch_sizes(next, "w1")) CHECK(n == 8);

  // Reports drained in the same loop turn say nothing of the time: the slowest slice counts.
  Harness g(dispatch_options());
  const std::string job2 = g.submit(1000000);
  g.hello("w1", 1024);
  pace(g, "w1", job2, 50000);
  CHECK(g.sched.slice_us("w1", g.job(job2)) == Approx(50000));
}

TEST_CASE("scheduler starts a job of another shape with small batches whatever the last pace",
          "[broker]") {
  Harness h(dispatch_options());
  const std::string a = h.submit(100000);
  h.hello("w1", 64);
  pace(h, "w1", a, 1);  // job a: tiny slices
  REQUIRE(h.sched.cancel(a, h.now).ok());
  SECTION("another slice size") {
    const std::string b = h.submit(100000, 20);
    CHECK(batch_sizes(h.dispatch(), "w1") == std::vector<std::uint64_t>{4});
    CHECK(h.sched.slice_us("w1", h.job(b)) == 0);
  }
  SECTION("another kernel") {
    const std::string b = h.submit(100000, 10, {}, "other_range");
    CHECK(batch_sizes(h.dispatch(), "w1") == std::vector<std::uint64_t>{4});
    CHECK(h.sched.slice_us("w1", h.job(b)) == 0);
  }
  SECTION("other parameters") {
    JobSpec spec;
    spec.kernel = "count_range";
    spec.count = 100000;
    spec.slice_size = 10;
    spec.params.set("iterations", std::int64_t{1000});
    auto b = h.sched.submit(spec, h.now);
    REQUIRE(b.ok());
    CHECK(batch_sizes(h.dispatch(), "w1") == std::vector<std::uint64_t>{4});
    CHECK(h.sched.slice_us("w1", h.job(b.value().job_id)) == 0);
  }
}

TEST_CASE("scheduler starts a job of a shape it recalls in batches paced as that shape ran",
          "[broker]") {
  Harness h(dispatch_options());
  const std::string a = h.submit(100000);
  h.hello("w1", 64);
  pace(h, "w1", a, 100);  // job a: 100 µs a slice
  REQUIRE(h.sched.cancel(a, h.now).ok());
  // Same kernel, slice size, parameters and datasets; another range: no first small batch, but
  // the paced batches of 20 (2 ms), pipeline_depth of them.
  const std::string b = h.submit(50000);
  CHECK(h.sched.slice_us("w1", h.job(b)) == Approx(100));
  CHECK(batch_sizes(h.dispatch(), "w1") == std::vector<std::uint64_t>{20, 20});
}

TEST_CASE("scheduler starts each worker on a job at its own pace on the last job of the shape",
          "[broker]") {
  Harness h(dispatch_options());
  const std::string a = h.submit(100000);
  h.hello("w1", 64);
  h.hello("w2", 64);
  pace(h, "w1", a, 100);
  auto d = h.dispatch();
  h.report("w2", a, runs_of(d, "w2"), 400);
  REQUIRE(h.sched.cancel(a, h.now).ok());
  const std::string b = h.submit(50000);  // a's shape: each worker as fast as it was on a
  CHECK(h.sched.slice_us("w1", h.job(b)) == Approx(100));
  CHECK(h.sched.slice_us("w2", h.job(b)) == Approx(400));
  const std::string c = h.submit(50000, 20);  // another shape: nothing known of either
  CHECK(h.sched.slice_us("w1", h.job(c)) == 0);
  CHECK(h.sched.slice_us("w2", h.job(c)) == 0);
}

TEST_CASE("scheduler expects a job to take its slices at its shape's pace over its workers",
          "[broker]") {
  Harness h(dispatch_options());
  const std::string a = h.submit(100000);     // 10000 slices of 10
  CHECK(h.sched.expected_us(h.job(a)) == 0);  // no pace known: nothing expected
  h.hello("w1", 64);
  pace(h, "w1", a, 100);
  REQUIRE(h.sched.cancel(a, h.now).ok());
  const std::string b = h.submit(50000);  // its shape: 5000 slices at 100 µs, one worker
  CHECK(h.sched.expected_us(h.job(b)) == Approx(500000));
  h.hello("w2", 64);  // two workers share it
  CHECK(h.sched.expected_us(h.job(b)) == Approx(250000));
  const std::string c = h.submit(50000, 20);  // another slice size: another shape, unknown
  CHECK(h.sched.expected_us(h.job(c)) == 0);
}

TEST_CASE("scheduler hands one-slice jobs of a known shape out beyond the first batches",
          "[broker]") {
  // Many one-slice jobs (Pool.apply_async's pattern): while their shape is unknown a worker holds
  // pipeline_depth * first_batch of them (2 * 4); once one reported, as many as its pace allows.
  Harness h(dispatch_options());
  h.hello("w1", 64);
  std::vector<std::string> jobs;
  for (int i = 0; i < 100; ++i) jobs.push_back(h.submit(1, 1));
  auto first = h.dispatch();
  CHECK(slices_in(first, "w1") == 8);
  h.report("w1", first.at(0).job->spec.job_id, first.at(0).runs, 50);  // 50 µs a job
  // 50 µs a slice: batches of half the credit (32, 1.6 ms), two of them in flight: the credit.
  h.dispatch();
  CHECK(h.worker("w1").inflight == 64);
}

TEST_CASE("scheduler forgets the pace of a shape after recalled_shapes newer ones", "[broker]") {
  SchedulerOptions o = dispatch_options();
  o.recalled_shapes = 1;
  Harness h(o);
  h.hello("w1", 64);
  const std::string a = h.submit(100000);
  pace(h, "w1", a, 100);
  REQUIRE(h.sched.cancel(a, h.now).ok());
  const std::string other = h.submit(100000, 20);  // a new shape pushes a's out
  REQUIRE(h.sched.cancel(other, h.now).ok());
  const std::string b = h.submit(100000);
  CHECK(h.sched.slice_us("w1", h.job(b)) == 0);
  CHECK(batch_sizes(h.dispatch(), "w1") == std::vector<std::uint64_t>{4});
}

TEST_CASE("scheduler sizes a newcomer's batches by the pace the job's other workers showed",
          "[broker]") {
  Harness h(dispatch_options());
  const std::string job = h.submit(100000);
  h.hello("w1", 64);
  pace(h, "w1", job, 100);  // 100 µs a slice: batches of 20
  h.hello("w2", 64);
  auto d = h.dispatch();
  CHECK(batch_sizes(d, "w2") == std::vector<std::uint64_t>{20, 20});
}

TEST_CASE("scheduler gives a slower worker a smaller share of a job's tail", "[broker]") {
  SchedulerOptions o = dispatch_options();
  o.batch_target_us = 1000000;  // batches bounded by the share alone
  Harness h(o);
  const std::string job = h.submit(2000);  // 200 slices
  h.hello("fast", 1024);
  h.hello("slow", 1024);
  auto d = h.dispatch();
  REQUIRE(slices_in(d, "fast") == 4);
  REQUIRE(slices_in(d, "slow") == 4);
  h.report("fast", job, runs_of(d, "fast"), 100);
  h.report("slow", job, runs_of(d, "slow"), 400);  // 4x slower

  // The 192 slices left go out by speed: about 4/5 to the fast worker, 1/5 to the slow one
  // (equal shares would give each about half).
  d = h.dispatch();
  const double fast = static_cast<double>(slices_in(d, "fast"));
  const double slow = static_cast<double>(slices_in(d, "slow"));
  CHECK(fast + slow == 192);
  CHECK(slow / (fast + slow) > 0.1);
  CHECK(slow / (fast + slow) < 0.3);
}

TEST_CASE("scheduler spreads a short tail over workers of unknown pace", "[broker]") {
  Harness h(dispatch_options());
  h.submit(40);  // 4 slices
  h.hello("w1", 64);
  h.hello("w2", 64);
  auto d = h.dispatch();
  CHECK(slices_in(d, "w1") == 2);
  CHECK(slices_in(d, "w2") == 2);
}

// A job of unknown pace has one batch per worker in flight, so the worker idles between reports
// and its timing window restarts with each batch; slices too short for the worker to time (it
// says 0 µs) gave no sample at all, and the job went on at 4 slices per round trip forever.
TEST_CASE(
    "scheduler learns the pace of a job whose slices are too short to time, although one batch "
    "at a time is in flight",
    "[broker]") {
  Harness h(dispatch_options());
  const std::string job = h.submit(100000);  // 10,000 slices
  h.hello("w1", 1024);
  std::uint64_t largest = 0;
  int steps = 0;
  for (; !h.job(job).final() && steps < 2000; ++steps) {
    const auto d = h.dispatch();
    for (std::uint64_t n : batch_sizes(d, "w1")) largest = std::max(largest, n);
    h.now += std::chrono::microseconds(100);  // a round trip, the slices taking no time
    for (const Dispatch& x : d) h.report("w1", job, x.runs, 0);
  }
  CHECK(h.job(job).final());
  CHECK(largest > 4);
  CHECK(steps < 200);
  CHECK(h.sched.slice_us("w1", h.job(job)) > 0);
}

TEST_CASE(
    "scheduler sends a job's spec to a worker once and names the job by ref after, to an older "
    "worker always",
    "[broker]") {
  SchedulerOptions o = dispatch_options();
  o.max_batch = 1;
  Harness h(o);
  const std::string a = h.submit(100000, 10, "a");
  msg::Hello hello;
  hello.worker_id = "new";
  hello.credit = 8;
  hello.job_refs = true;
  REQUIRE(h.sched.hello(hello, h.now) == HelloVerdict::kRegistered);
  h.hello("old", 8);  // no job_refs
  const std::uint64_t ref_a = h.job(a).ref;
  CHECK(ref_a != 0);

  auto d = h.dispatch();
  REQUIRE(batch_sizes(d, "new").size() >= 2);
  std::vector<bool> carried;
  for (const Dispatch& x : d) {
    if (x.worker_id == "old") {
      CHECK(x.ref == 0);
      CHECK(x.with_spec);
      continue;
    }
    CHECK(x.ref == ref_a);
    carried.push_back(x.with_spec);
  }
  std::vector<bool> want(carried.size(), false);
  want[0] = true;  // the first carries the spec; the rest name it
  CHECK(carried == want);

  // Another job in between: each switch carries the spec of the job switched to.
  h.report("new", a, runs_of(d, "new"), 1);
  h.report("old", a, runs_of(d, "old"), 1);
  (void)h.sched.cancel(a, h.now);
  const std::string b = h.submit(100000, 10, "b");
  const std::uint64_t ref_b = h.job(b).ref;
  CHECK(ref_b != ref_a);
  auto db = h.dispatch();
  REQUIRE_FALSE(batch_sizes(db, "new").empty());
  bool first = true;
  for (const Dispatch& x : db) {
    if (x.worker_id != "new") continue;
    CHECK(x.ref == ref_b);
    CHECK(x.with_spec == first);
    first = false;
  }

  // A worker that registers again holds nothing: its next Tasks carries the spec again.
  REQUIRE(h.sched.hello(hello, h.now) == HelloVerdict::kReplaced);
  auto again = h.dispatch();
  REQUIRE_FALSE(batch_sizes(again, "new").empty());
  for (const Dispatch& x : again) {
    if (x.worker_id != "new") continue;
    CHECK(x.with_spec);
    break;
  }
}
