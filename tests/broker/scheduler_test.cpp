// Scheduler: dispatch, credit, leases, heartbeats and job life cycles, without sockets and
// without sleeping (time is passed in: "5.1 s passed").
#include "scheduler.hpp"

#include <algorithm>
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "scheduler_harness.hpp"

using namespace zwq;
using namespace zwq::broker;
using namespace std::chrono_literals;
using namespace zwq::broker::test;

TEST_CASE("scheduler dispatch respects credit", "[broker]") {
  Harness h;
  const std::string job = h.submit(100);  // 10 slices
  h.hello("w1", 3);
  auto d = h.dispatch();
  CHECK(slices_in(d) == 3);
  CHECK(h.dispatch().empty());  // no credit left
  CHECK(h.worker("w1").inflight == 3);

  // Two outcomes free two credits.
  SliceRun first = d[0].runs[0];
  first.count = 2;
  h.report("w1", job, {first});
  CHECK(h.worker("w1").inflight == 1);
  CHECK(slices_in(h.dispatch()) == 2);
  CHECK(h.worker("w1").inflight == 3);
}

TEST_CASE("scheduler hands out contiguous runs of one job without overlap", "[broker]") {
  Harness h;
  const std::string job = h.submit(1000);  // 100 slices
  h.hello("w1", 8);
  h.hello("w2", 8);
  h.hello("w3", 8);
  std::set<std::uint64_t> seen;
  for (const Dispatch& d : h.dispatch()) {
    CHECK(d.job->spec.job_id == job);
    REQUIRE(d.runs.size() == 1);  // a fresh job: one contiguous run per worker
    const SliceRun& r = d.runs[0];
    CHECK(r.attempt == 1);
    for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
      CHECK(seen.insert(s).second);
    }
  }
  CHECK(seen.size() == 24);
}

TEST_CASE("scheduler spreads a short tail over the workers", "[broker]") {
  Harness h;
  h.submit(40);  // 4 slices
  h.hello("w1", 8);
  h.hello("w2", 8);
  auto d = h.dispatch();
  CHECK(slices_in(d, "w1") == 2);
  CHECK(slices_in(d, "w2") == 2);
}

TEST_CASE("scheduler keeps a job queued until its first dispatch", "[broker]") {
  Harness h;
  const std::string job = h.submit(100);
  CHECK(h.status(job).state == JobState::kQueued);
  h.hello("w1", 1);
  h.dispatch();
  CHECK(h.status(job).state == JobState::kRunning);
  CHECK(h.status(job).inflight == 1);
}

TEST_CASE("scheduler requeues a dead worker's slices with the next attempt", "[broker]") {
  Harness h;
  const std::string job = h.submit(100);
  h.hello("w1", 2);
  auto d = h.dispatch();
  REQUIRE(slices_in(d, "w1") == 2);

  h.pass(2s);
  h.hello("w2", 2);
  h.pass(3100ms);  // 5.1 s since w1 was last heard of; w2 heard of 3.1 s ago
  auto dead = h.sched.expire(h.now);
  CHECK(dead == std::vector<std::string>{"w1"});
  CHECK_FALSE(h.sched.has_worker("w1"));
  CHECK(h.status(job).retried == 2);

  // Each was held by a worker that died, so each goes alone (a suspect).
  auto again = h.dispatch();
  REQUIRE(again.size() == 1);
  CHECK(again[0].worker_id == "w2");
  CHECK(again[0].runs == std::vector<SliceRun>{SliceRun{0, 1, 2}});
  CHECK(h.dispatch().empty());
  h.report("w2", job, again[0].runs);
  auto last = h.dispatch();
  REQUIRE(last.size() == 1);
  CHECK(last[0].runs == std::vector<SliceRun>{SliceRun{1, 1, 2}});
}

TEST_CASE("scheduler keeps a worker that heartbeats", "[broker]") {
  Harness h;
  h.hello("w1", 2);
  for (int i = 0; i < 10; ++i) {
    h.pass(4900ms);
    CHECK(h.sched.heartbeat("w1", h.now));
    CHECK(h.sched.expire(h.now).empty());
  }
  h.pass(5001ms);
  CHECK(h.sched.expire(h.now) == std::vector<std::string>{"w1"});
}

TEST_CASE("scheduler discards a late result of an old attempt and counts it", "[broker]") {
  Harness h;
  const std::string job = h.submit(20);  // 2 slices
  h.hello("w1", 2);
  auto old_runs = h.dispatch()[0].runs;
  h.pass(5100ms);
  h.hello("w2", 2);
  REQUIRE(h.sched.expire(h.now) == std::vector<std::string>{"w1"});
  auto new_runs = h.dispatch()[0].runs;
  REQUIRE(new_runs == std::vector<SliceRun>{SliceRun{0, 1, 2}});  // a suspect goes alone

  auto late = h.report("w1", job, old_runs);
  CHECK(late.accepted == 0);
  CHECK(late.discarded == 2);
  CHECK(h.status(job).discarded == 2);
  CHECK(h.status(job).done == 0);
  CHECK(h.worker("w2").inflight == 1);  // the new holder's credit is untouched

  auto fresh = h.report("w2", job, new_runs);
  CHECK(fresh.accepted == 1);
  fresh = h.report("w2", job, h.dispatch()[0].runs);
  CHECK(fresh.accepted == 1);
  CHECK(h.status(job).state == JobState::kDone);
}

TEST_CASE("scheduler discards a duplicate outcome", "[broker]") {
  Harness h;
  const std::string job = h.submit(30);  // 3 slices
  h.hello("w1", 3);
  h.dispatch();
  h.report_one("w1", job, Harness::count_outcome(1, 1));
  auto dup = h.report_one("w1", job, Harness::count_outcome(1, 1));
  CHECK(dup.discarded == 1);
  const JobStatus st = h.status(job);
  CHECK(st.done == 1);
  CHECK(st.discarded == 1);
  CHECK(h.worker("w1").inflight == 2);  // credit freed once, not twice
}

TEST_CASE("scheduler completes a job only when every slice is covered exactly once", "[broker]") {
  Harness h;
  const std::string job = h.submit(30);  // 3 slices
  h.hello("w1", 3);
  h.dispatch();
  h.changes();
  h.report_one("w1", job, Harness::count_outcome(0, 1));
  h.report_one("w1", job, Harness::count_outcome(2, 1));
  CHECK(h.status(job).state == JobState::kRunning);
  CHECK(h.changes().finished.empty());
  h.report_one("w1", job, Harness::count_outcome(1, 1));
  CHECK(h.status(job).state == JobState::kDone);
  CHECK(h.status(job).done == 3);
  CHECK(h.changes().finished == std::vector<std::string>{job});
  CHECK(h.job(job).result.value == 3.0);  // one count per slice
  CHECK(h.worker("w1").inflight == 0);
}

TEST_CASE("scheduler result is identical for any number of workers and arrival order", "[broker]") {
  constexpr std::uint64_t kSlices = 64;
  const std::vector<double> values = random_values(kSlices, 7);

  auto run = [&](int n_workers, std::uint64_t seed) {
    Harness h;
    REQUIRE(h.sched.submit(sum_spec("sum-job", kSlices), h.now).ok());
    for (int w = 0; w < n_workers; ++w) h.hello(std::string("w").append(std::to_string(w)), 3);
    std::mt19937_64 order_rng(seed);
    while (h.status("sum-job").state != JobState::kDone) {
      std::vector<std::pair<std::string, SliceOutcome>> outcomes;
      for (const Dispatch& d : h.dispatch()) {
        for (const SliceRun& r : d.runs) {
          for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
            outcomes.emplace_back(d.worker_id, sum_outcome(s, r.attempt, values[s]));
          }
        }
      }
      REQUIRE_FALSE(outcomes.empty());
      std::shuffle(outcomes.begin(), outcomes.end(), order_rng);
      for (auto& [w, o] : outcomes) h.report_one(w, "sum-job", o);
    }
    return h.job("sum-job").result;
  };
  const JobResult reference = run(1, 1);
  CHECK(reference.merged.n == kSlices * 10);
  for (int workers : {2, 3, 5, 8}) {
    for (std::uint64_t seed : {11, 12, 13}) {
      const JobResult r = run(workers, seed);
      CHECK(std::bit_cast<std::uint64_t>(r.value) == std::bit_cast<std::uint64_t>(reference.value));
      CHECK(std::bit_cast<std::uint64_t>(r.merged.lo) ==
            std::bit_cast<std::uint64_t>(reference.merged.lo));
    }
  }
}

TEST_CASE("scheduler completes an empty job at once", "[broker]") {
  Harness h;
  JobSpec spec;
  spec.job_id = "empty";
  spec.kernel = "count_range";
  auto rep = h.sched.submit(spec, h.now);
  REQUIRE(rep.ok());
  CHECK(rep.value().total_slices == 0);
  CHECK(h.status("empty").state == JobState::kDone);
  CHECK(h.job("empty").result.value == 0.0);
  CHECK(h.changes().finished == std::vector<std::string>{"empty"});
  h.hello("w1", 4);
  CHECK(h.dispatch().empty());
}

TEST_CASE("scheduler fails a job on a kernel error, naming job, slice and kernel", "[broker]") {
  Harness h;
  const std::string bad = h.submit(50, 10, "bad-job");
  const std::string good = h.submit(50, 10, "good-job");
  h.hello("w1", 20);
  h.dispatch();
  h.changes();
  SliceOutcome o;
  o.slice = 3;
  o.attempt = 1;
  o.code = ErrorCode::kKernelFailed;
  o.message = "boom at element 34";
  h.report_one("w1", bad, o);

  const JobStatus st = h.status(bad);
  CHECK(st.state == JobState::kFailed);
  CHECK(st.error_code == ErrorCode::kKernelFailed);
  CHECK_THAT(st.error, Catch::Contains("job bad-job") && Catch::Contains("slice 3") &&
                           Catch::Contains("count_range") && Catch::Contains("w1") &&
                           Catch::Contains("boom at element 34"));
  CHECK(h.changes().finished == std::vector<std::string>{bad});
  CHECK(h.status(good).state == JobState::kRunning);
  CHECK(h.worker("w1").inflight == 5);  // the failed job's leases no longer count
}

TEST_CASE("scheduler cancel drops queued slices and frees credit", "[broker]") {
  Harness h;
  const std::string job = h.submit(1000, 10, "big");  // 100 slices
  h.hello("w1", 4);
  auto d = h.dispatch();
  REQUIRE(slices_in(d) == 4);
  auto st = h.sched.cancel(job, h.now);
  REQUIRE(st.ok());
  CHECK(st.value().state == JobState::kCancelled);
  CHECK(st.value().error_code == ErrorCode::kCancelled);
  CHECK(h.worker("w1").inflight == 0);
  CHECK(h.dispatch().empty());

  auto late = h.report("w1", job, d[0].runs);  // the worker finishes what it had
  CHECK(late.accepted == 0);
  CHECK(h.status(job).state == JobState::kCancelled);

  const std::string next = h.submit(20, 10, "next");
  CHECK(slices_in(h.dispatch()) == 2);
  CHECK(h.status(next).state == JobState::kRunning);
}

TEST_CASE("scheduler cancel of a finished job changes nothing", "[broker]") {
  Harness h;
  h.submit(0, 10, "done");
  auto st = h.sched.cancel("done", h.now);
  REQUIRE(st.ok());
  CHECK(st.value().state == JobState::kDone);
  CHECK(h.sched.cancel("nope", h.now).error().code == ErrorCode::kUnknownJob);
}

// A job counts the lease records that point at it, so that finishing it can skip the walk over
// every worker's leases when none do. A miscount would leave a lease of a finished (and later
// forgotten) job with its worker: the worker's credit would never come back.
TEST_CASE("scheduler cancel frees the credit of runs still out after others came back",
          "[broker]") {
  Harness h;
  const std::string a = h.submit(60, 10, "a");  // 6 slices
  h.hello("w1", 2);
  h.hello("w2", 2);
  auto first = h.dispatch();
  REQUIRE(slices_in(first) == 4);
  CHECK(h.job(a).lease_records == 2);
  // w1's run comes back; w2's is still out when w1 takes the next run.
  REQUIRE(h.report("w1", a, runs_of(first, "w1")).accepted == 2);
  CHECK(h.job(a).lease_records == 1);
  auto second = h.dispatch();
  REQUIRE(slices_in(second, "w1") == 2);
  CHECK(h.job(a).lease_records == 2);

  REQUIRE(h.sched.cancel(a, h.now).ok());
  CHECK(h.job(a).lease_records == 0);
  CHECK(h.worker("w1").inflight == 0);
  CHECK(h.worker("w2").inflight == 0);
  // A job that ends with every run back had nothing left to drop.
  const std::string b = h.submit(20, 10, "b");
  auto d = h.dispatch();
  for (const char* w : {"w1", "w2"}) h.report(w, b, runs_of(d, w));
  CHECK(h.status(b).state == JobState::kDone);
  CHECK(h.job(b).lease_records == 0);
  CHECK(h.worker("w1").inflight == 0);
  CHECK(h.worker("w2").inflight == 0);
}

TEST_CASE("scheduler counts no lease record for the runs a worker held before its second Hello",
          "[broker]") {
  Harness h;
  const std::string a = h.submit(40, 10, "a");
  h.hello("w1", 4);
  REQUIRE(slices_in(h.dispatch()) == 4);
  REQUIRE(h.job(a).lease_records == 1);
  h.hello("w1", 4);  // a reconnect: its run goes back to the queue
  CHECK(h.job(a).lease_records == 0);
  auto d = h.dispatch();
  REQUIRE(slices_in(d) == 4);
  CHECK(h.job(a).lease_records == 1);
  REQUIRE(h.sched.cancel(a, h.now).ok());
  CHECK(h.worker("w1").inflight == 0);
}

TEST_CASE("scheduler answers an existing job id with existed", "[broker]") {
  Harness h;
  h.submit(100, 10, "same");
  JobSpec again;
  again.job_id = "same";
  again.kernel = "count_range";
  again.count = 100;
  auto rep = h.sched.submit(again, h.now);
  REQUIRE(rep.ok());
  CHECK(rep.value().existed);
  CHECK(rep.value().job_id == "same");
  CHECK(rep.value().total_slices == 10);
  CHECK(h.sched.all_status(h.now).size() == 1);
}

TEST_CASE("scheduler refuses a known job id for other work, and does not touch the job of that id",
          "[broker]") {
  Harness h;
  h.submit(100, 10, "mine");
  JobSpec other;
  other.job_id = "mine";
  other.kernel = "count_range";
  other.count = 200;  // another range: another answer
  auto rep = h.sched.submit(other, h.now);
  REQUIRE_FALSE(rep.ok());
  CHECK(rep.error().code == ErrorCode::kInvalidArgument);
  CHECK(rep.error().message.find("job id 'mine' is taken by another job (kernel 'count_range', "
                                 "[0, 100); this submit's range [0, 200) differs)") !=
        std::string::npos);
  other.count = 100;
  other.params.set("x", std::int64_t{1});  // other parameters
  CHECK_FALSE(h.sched.submit(other, h.now).ok());
  other.params = {};
  other.kernel = "sum";  // another kernel
  CHECK_FALSE(h.sched.submit(other, h.now).ok());
  // A retry is the same work even if a dataset's probed length or the slice size differ.
  JobSpec retry = h.job("mine").spec;
  retry.slice_size = 0;
  retry.input.length += 10;
  auto again = h.sched.submit(retry, h.now);
  REQUIRE(again.ok());
  CHECK(again.value().existed);
  CHECK(h.job("mine").spec.count == 100);
  CHECK(h.sched.all_status(h.now).size() == 1);
}

TEST_CASE("scheduler keeps no trace of a refused job: its id is free for a valid one", "[broker]") {
  Harness h;
  JobSpec bad;
  bad.job_id = "retry-me";
  bad.kernel = "no_such_kernel";
  bad.count = 100;
  REQUIRE_FALSE(h.sched.submit(bad, h.now).ok());
  CHECK(h.sched.find_job("retry-me") == nullptr);
  CHECK(h.sched.all_status(h.now).empty());

  JobSpec good = bad;
  good.kernel = "count_range";
  auto rep = h.sched.submit(good, h.now);
  REQUIRE(rep.ok());
  CHECK_FALSE(rep.value().existed);
  CHECK(rep.value().total_slices == 10);
  CHECK(h.job("retry-me").spec.kernel == "count_range");
}

TEST_CASE("scheduler names no id when it refuses a job that came without one", "[broker]") {
  Harness h;
  JobSpec bad;
  bad.kernel = "no_such_kernel";
  bad.count = 100;
  auto refused = h.sched.submit(bad, h.now);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("job ") == std::string::npos);
  CHECK(h.sched.all_status(h.now).empty());
}

TEST_CASE("scheduler restores a job's uncovered slices as ranges in slice order", "[broker]") {
  Harness h;
  RecoveredJob r;
  r.spec = count_spec("back", 8);  // 1, 4 and 5 were covered before the restart
  for (std::uint64_t s : {1, 4, 5}) r.covered.emplace_back(s, CompactPartial{10, 0, 10});
  REQUIRE(h.sched.restore(std::move(r), h.now).ok());
  h.hello("w1", 100);
  const auto d = h.dispatch();
  REQUIRE(d.size() == 1);
  CHECK(d[0].runs == std::vector<SliceRun>{{0, 1, 1}, {2, 2, 1}, {6, 2, 1}});
}

TEST_CASE("scheduler generates a job id when none is given", "[broker]") {
  Harness h;
  const std::string a = h.submit(10);
  const std::string b = h.submit(10);
  CHECK_FALSE(a.empty());
  CHECK(a != b);
  CHECK(valid_job_id(a));
}

// A Tasks message carries the spec as the scheduler packed it at submit: a short spec fits the
// packer's stack buffer, a long one (a path and parameters past 512 bytes) spills past it.
TEST_CASE("scheduler packs each job's spec whole for its Tasks, short or past 512 bytes",
          "[broker]") {
  Harness h;
  h.hello("w", 100);
  JobSpec small = sum_spec("small", 2);
  JobSpec large = sum_spec("large", 2);
  large.input.uri = "shm:" + std::string(600, 'p');
  large.params.set("label", std::string(300, 'x'));
  large.params.set("bins", std::int64_t{7});
  for (const JobSpec& spec : {small, large}) {
    REQUIRE(h.sched.submit(spec, h.now).ok());
    const std::string& bytes = h.job(spec.job_id).spec_bytes;
    const msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    CHECK(oh.get().as<JobSpec>() == h.job(spec.job_id).spec);
    CHECK(h.job(spec.job_id).spec.input.uri == spec.input.uri);
  }
  CHECK(h.job("large").spec_bytes.size() > 900);
  const auto ds = h.dispatch();
  REQUIRE(ds.size() == 2);
  CHECK(ds[1].job->spec_bytes == h.job("large").spec_bytes);
}

// A job that differs from the one before only in its id reuses that one's packed bytes after the
// id; whichever way, the bytes are those of packing the job's own spec.
TEST_CASE("scheduler packs specs that differ only in their ids as packing each would", "[broker]") {
  Harness h;
  JobSpec base = sum_spec("first", 2);
  base.params.set("scale", 0.5);
  std::vector<JobSpec> specs;
  for (const char* id : {"a", "b-with-an-id-past-fifteen-chars", "c"}) {
    specs.push_back(base);
    specs.back().job_id = id;
  }
  specs.push_back(specs.back());
  specs.back().job_id = "d-other-count";
  specs.back().count = 30;  // differs in more than its id
  specs.push_back(specs.back());
  specs.back().job_id = "e";  // like d but for its id
  specs.push_back(base);
  specs.back().job_id = "f";
  specs.back().params.set("scale", 0.25);  // the same length, other bytes
  for (const JobSpec& spec : specs) {
    INFO(spec.job_id);
    REQUIRE(h.sched.submit(spec, h.now).ok());
    const Job& job = h.job(spec.job_id);
    msgpack::sbuffer whole;
    msgpack::pack(whole, job.spec);
    CHECK(job.spec_bytes == std::string(whole.data(), whole.size()));
    CHECK(msgpack::unpack(job.spec_bytes.data(), job.spec_bytes.size()).get().as<JobSpec>() ==
          job.spec);
  }
}

TEST_CASE("scheduler requeues the leases of a worker that says Hello again", "[broker]") {
  Harness h;
  const std::string job = h.submit(100);
  h.hello("w1", 2);
  h.dispatch();
  msg::Hello again;
  again.worker_id = "w1";
  again.credit = 2;
  CHECK(h.sched.hello(again, h.now) == HelloVerdict::kReplaced);
  CHECK(h.worker("w1").inflight == 0);
  CHECK(h.status(job).retried == 2);
  auto d = h.dispatch();
  CHECK(d[0].runs == std::vector<SliceRun>{SliceRun{0, 2, 2}});
}

TEST_CASE("scheduler requeues at once when a worker says Bye", "[broker]") {
  Harness h;
  const std::string job = h.submit(100);
  h.hello("w1", 3);
  h.dispatch();
  CHECK(h.sched.bye("w1", h.now));
  CHECK(h.sched.worker_count() == 0);
  CHECK(h.status(job).retried == 3);
  CHECK(h.status(job).inflight == 0);
  h.hello("w2", 3);
  CHECK(h.dispatch()[0].runs == std::vector<SliceRun>{SliceRun{0, 3, 2}});
}

TEST_CASE("scheduler requeues the slices of an unreachable worker", "[broker]") {
  Harness h;
  const std::string job = h.submit(100);
  h.hello("w1", 3);
  h.dispatch();
  CHECK(h.sched.lose_worker("w1", h.now));
  CHECK(h.sched.counters().workers_lost == 1);
  CHECK(h.status(job).retried == 3);
}

TEST_CASE("scheduler ignores messages from unknown workers and counts them", "[broker]") {
  Harness h;
  CHECK_FALSE(h.sched.heartbeat("ghost", h.now));
  CHECK_FALSE(h.sched.bye("ghost", h.now));
  CHECK(h.sched.counters().unknown_worker == 2);
}

TEST_CASE("scheduler refuses a Hello without credit", "[broker]") {
  Harness h;
  msg::Hello m;
  m.worker_id = "w1";
  m.credit = 0;
  CHECK(h.sched.hello(m, h.now) == HelloVerdict::kRejected);
  CHECK(h.sched.worker_count() == 0);
}

TEST_CASE("scheduler drops Results of another epoch", "[broker]") {
  Harness h;
  const std::string job = h.submit(10);
  h.hello("w1", 1);
  h.dispatch();
  msg::Results m;
  m.epoch = kEpoch + 1;
  m.worker_id = "w1";
  m.job_id = job;
  m.items.push_back(Harness::count_outcome(0, 1));
  CHECK(h.sched.results(m, h.now).stale_epoch);
  CHECK(h.sched.counters().stale_epoch == 1);
  CHECK(h.status(job).done == 0);
}

TEST_CASE("scheduler counts outcomes of unknown jobs", "[broker]") {
  Harness h;
  h.hello("w1", 1);
  h.report_one("w1", "nope", Harness::count_outcome(0, 1));
  CHECK(h.sched.counters().orphan_outcomes == 1);
}

TEST_CASE("scheduler frees the holder's credit when another id reports its slice", "[broker]") {
  Harness h;
  const std::string job = h.submit(20);
  h.hello("w1", 2);
  h.dispatch();
  h.report_one("someone-else", job, Harness::count_outcome(0, 1));
  CHECK(h.status(job).done == 1);
  CHECK(h.worker("w1").inflight == 1);
}

TEST_CASE("scheduler runs the oldest job first", "[broker]") {
  Harness h;
  const std::string a = h.submit(20, 10, "a");
  const std::string b = h.submit(20, 10, "b");
  h.hello("w1", 2);
  auto d = h.dispatch();
  REQUIRE(d.size() == 1);
  CHECK(d[0].job->spec.job_id == "a");
  h.report("w1", a, d[0].runs);
  d = h.dispatch();
  REQUIRE(d.size() == 1);
  CHECK(d[0].job->spec.job_id == "b");
}

TEST_CASE("scheduler gives a worker only kernels it announced", "[broker]") {
  Harness h;
  h.submit(20, 10, "a", "other_range");
  h.submit(20, 10, "b", "count_range");
  h.hello("w1", 4, {"count_range"});
  auto d = h.dispatch();
  REQUIRE(d.size() == 1);
  CHECK(d[0].job->spec.job_id == "b");
}

TEST_CASE("scheduler reports workers with credit, inflight and heartbeat age", "[broker]") {
  Harness h;
  h.submit(100);
  h.hello("w1", 4);
  h.dispatch();
  h.pass(1500ms);
  const WorkerStatus w = h.worker("w1");
  CHECK(w.state == "busy");
  CHECK(w.credit == 4);
  CHECK(w.inflight == 4);
  CHECK(w.heartbeat_age_ms == 1500);
}

TEST_CASE("scheduler reports elapsed time until a job finishes", "[broker]") {
  Harness h;
  const std::string job = h.submit(10);
  h.hello("w1", 1);
  auto d = h.dispatch();
  h.pass(250ms);
  CHECK(h.status(job).elapsed_ms == 250);
  h.report("w1", job, d[0].runs);
  h.pass(10s);
  CHECK(h.status(job).elapsed_ms == 250);
}

TEST_CASE("scheduler forgets the oldest finished jobs beyond its cap", "[broker]") {
  SchedulerOptions o = test_options();
  o.max_finished_jobs = 2;
  Harness h(o);
  h.submit(0, 10, "j1");
  h.submit(0, 10, "j2");
  h.submit(0, 10, "j3");
  CHECK(h.sched.find_job("j1") == nullptr);
  CHECK(h.sched.find_job("j2") != nullptr);
  CHECK(h.sched.find_job("j3") != nullptr);
}

TEST_CASE("scheduler forgets finished jobs in the order they finished, not submitted", "[broker]") {
  SchedulerOptions o = test_options();
  o.max_finished_jobs = 2;
  Harness h(o);
  for (const char* id : {"a", "b", "c"}) h.submit(10, 10, id);  // one slice each
  h.hello("w1", 8);
  auto d = h.dispatch();
  REQUIRE(slices_in(d) == 3);
  std::map<std::string, std::vector<SliceRun>> runs;  // (a Dispatch's job goes with the job)
  for (const auto& one : d) runs[one.job->spec.job_id] = one.runs;
  for (const char* id : {"c", "a", "b"}) h.report("w1", id, runs.at(id));
  CHECK(h.sched.find_job("c") == nullptr);  // finished first
  CHECK(h.status("a").state == JobState::kDone);
  CHECK(h.status("b").state == JobState::kDone);
  h.submit(0, 10, "d");  // done at once: "a" goes next
  CHECK(h.sched.find_job("a") == nullptr);
  CHECK(h.sched.find_job("b") != nullptr);
  CHECK(h.sched.find_job("d") != nullptr);
}

TEST_CASE("scheduler keeps exactly the newest finished jobs over many forgetting rounds",
          "[broker]") {
  // Thousands of jobs through a small cap: every finished job past it is forgotten, one per job,
  // while the table reuses the places of forgotten ids. Ids of both kinds: short ones stored in
  // the Job itself and long ones (over 15 characters) stored apart.
  SchedulerOptions o = test_options();
  o.max_finished_jobs = 50;
  Harness h(o);
  const auto id_of = [](int i) {
    std::string id = i % 2 == 0 ? "s" : "a-long-job-identifier-";
    id.append(std::to_string(i));
    return id;
  };
  constexpr int kJobs = 3000;
  for (int i = 0; i < kJobs; ++i) h.submit(0, 10, id_of(i));  // each done at once
  int kept = 0;
  for (int i = 0; i < kJobs; ++i) {
    const Job* job = h.sched.find_job(id_of(i));
    if (i < kJobs - 50) {
      CHECK(job == nullptr);
    } else if (job != nullptr && job->spec.job_id == id_of(i)) {
      ++kept;
    }
  }
  CHECK(kept == 50);
  CHECK(h.sched.all_status(h.now).size() == 50);
}

// A spec that fits a SubmitReq but not a Tasks would be refused by every worker; with Tasks that
// name their job by ref, a worker that refused the one carrying it would register again for ever.
TEST_CASE("scheduler refuses a job whose spec would not fit in a Tasks message", "[broker]") {
  Harness h;
  JobSpec spec = count_spec("huge", 4);
  spec.params.set("blob", std::string(proto::kMaxFrameBytes - 1000, 'x'));
  auto refused = h.sched.submit(spec, h.now);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kInvalidArgument);
  CHECK(refused.error().message.find("Tasks") != std::string::npos);
  CHECK(h.sched.find_job("huge") == nullptr);
  // A large one that fits is taken.
  spec.params.set("blob", std::string(std::size_t{1} << 20, 'x'));
  CHECK(h.sched.submit(spec, h.now).ok());
}

namespace {

// Runs a count_range job of `slices` one-element-per-10 slices to its end on worker "w1".
void run_to_end(Harness& h, const std::string& id, std::uint64_t slices) {
  h.submit(slices * 10, 10, id);
  std::uint64_t done = 0;
  while (done < slices) {
    auto d = h.dispatch();
    REQUIRE(slices_in(d, "w1") > 0);
    done += slices_in(d, "w1");
    h.report("w1", id, runs_of(d, "w1"));
  }
  REQUIRE(h.status(id).state == JobState::kDone);
}

bool results_released(Harness& h, const std::string& id) {
  const Job* job = h.sched.find_job(id);
  REQUIRE(job != nullptr);
  return job->collector.results_released();
}

}  // namespace

TEST_CASE("scheduler releases the oldest finished jobs' slice results beyond its slice cap",
          "[broker]") {
  SchedulerOptions o = test_options();
  o.max_finished_slices = 15;
  Harness h(o);
  h.hello("w1", 64);
  run_to_end(h, "a", 10);
  const JobResult a_result = h.sched.find_job("a")->result;
  CHECK_FALSE(results_released(h, "a"));
  run_to_end(h, "b", 10);  // 20 slices held: "a" gives up its own
  CHECK(results_released(h, "a"));
  CHECK_FALSE(results_released(h, "b"));
  // "a" is still known, with its result and status.
  CHECK(h.status("a").state == JobState::kDone);
  CHECK(h.status("a").done == 10);
  CHECK(a_result.merged.n == 100);
  CHECK(h.sched.find_job("a")->result == a_result);
  // The newest finished job keeps its results even alone over the cap.
  run_to_end(h, "c", 40);
  CHECK(results_released(h, "b"));
  CHECK_FALSE(results_released(h, "c"));
  std::vector<SliceResult> page;
  CHECK(h.sched.find_job("c")->collector.page(0, 100, 1 << 20, page) == 40);
}

TEST_CASE("scheduler's slice cap counts only the results of jobs it still knows", "[broker]") {
  // Jobs are forgotten (max_finished_jobs) while the slice cap does not bind: the two kept and
  // the one just finished hold 30 slices of 45. What the forgotten ones held must leave the
  // count; counted on, it would make the cap release the results of jobs still known.
  SchedulerOptions o = test_options();
  o.max_finished_jobs = 2;
  o.max_finished_slices = 45;
  Harness h(o);
  h.hello("w1", 64);
  for (int i = 0; i < 40; ++i) {
    std::string id = "j";
    id += std::to_string(i);
    run_to_end(h, id, 10);
  }
  // 10 + 10 + 30 held: the oldest of the three gives up its results and is then forgotten.
  run_to_end(h, "last", 30);
  CHECK(h.sched.find_job("j38") == nullptr);
  CHECK_FALSE(results_released(h, "j39"));
  CHECK_FALSE(results_released(h, "last"));
}

TEST_CASE("scheduler keeps a gather job's slice results whatever the slice cap", "[broker]") {
  SchedulerOptions o = test_options();
  o.max_finished_slices = 5;
  Harness h(o);
  h.hello("w1", 64);
  const std::string id = h.submit(100, 10, "g", "gather_range");
  auto d = h.dispatch();
  REQUIRE(slices_in(d, "w1") == 10);
  for (const SliceRun& r : runs_of(d, "w1")) {
    for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
      h.report_one("w1", id,
                   gather_outcome(s, r.attempt, std::string(1, static_cast<char>('a' + s))));
    }
  }
  REQUIRE(h.status(id).state == JobState::kDone);
  run_to_end(h, "after", 10);
  CHECK_FALSE(results_released(h, "g"));
  CHECK(h.sched.find_job("g")->full_result().gathered.size() == 10);
}

TEST_CASE("scheduler applies its slice cap to finished jobs restored from the journal",
          "[broker]") {
  SchedulerOptions o = test_options();
  o.max_finished_slices = 15;
  Harness h(o);
  auto finished = [](const std::string& id) {
    RecoveredJob r;
    r.spec.job_id = id;
    r.spec.kernel = "count_range";
    r.spec.count = 100;
    r.spec.slice_size = 10;
    for (std::uint64_t s = 0; s < 10; ++s) r.covered.push_back({s, CompactPartial{10, 0, 0}});
    r.state = JobState::kDone;
    r.result = JobResult{};
    r.result->value = 100;
    return r;
  };
  REQUIRE(h.sched.restore(finished("old"), h.now).ok());
  REQUIRE(h.sched.restore(finished("new"), h.now).ok());
  CHECK(results_released(h, "old"));
  CHECK_FALSE(results_released(h, "new"));
  CHECK(h.sched.find_job("old")->result.value == 100);
  CHECK(h.status("old").state == JobState::kDone);
  CHECK(h.status("old").done == 10);
}
