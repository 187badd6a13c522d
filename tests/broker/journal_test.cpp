// Journal: what a broker writes down survives a reopen (a restart), a torn last record is cut,
// the file is compacted and locked, and covered slices are batched — with a scheduler as the
// writer and real files in a temporary directory; time is passed in.
#include "journal.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "scheduler_harness.hpp"

using namespace zwq;
using namespace zwq::broker;
using namespace zwq::broker::test;
using namespace std::chrono_literals;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/zwq-journal-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file() const { return path + "/journal.zwq"; }
  std::uintmax_t size() const { return std::filesystem::file_size(file()); }
};

JournalOptions options_in(const TempDir& dir) {
  JournalOptions o;
  o.dir = dir.path;
  o.flush_ms = 100;
  o.fsync_ms = 0;
  return o;
}

// Computes up to `limit` slices of job `id` as worker w1 would (the sum of slice s is values[s]).
std::uint64_t compute(Harness& h, const std::string& id, const std::vector<double>& values,
                      std::uint64_t limit) {
  if (!h.sched.has_worker("w1")) h.hello("w1", 4);
  std::uint64_t done = 0;
  while (done < limit && !h.job(id).final()) {
    std::vector<Dispatch> ds = h.dispatch();
    if (ds.empty()) break;
    for (const Dispatch& d : ds) {
      for (const SliceRun& r : d.runs) {
        for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
          h.report_one(d.worker_id, d.job->spec.job_id, sum_outcome(s, r.attempt, values[s]));
          ++done;
        }
      }
    }
  }
  return done;
}

// Submits job `id` of a range kernel: 10 slices of 10.
void submit_range(Harness& h, const char* id, const char* kernel) {
  JobSpec spec;
  spec.job_id = id;
  spec.kernel = kernel;
  spec.count = 100;
  spec.slice_size = 10;
  REQUIRE(h.sched.submit(spec, h.now).ok());
}

// What slice s of a gather job gives in these tests.
std::string gathered_bytes(std::uint64_t s) {
  return std::string("bytes of ").append(std::to_string(s));
}

// An outcome of slice s for a count_range (1 + s) or gather_range (gathered_bytes(s)) job.
SliceOutcome count_or_gather_outcome(Combiner c, std::uint64_t s, std::uint32_t attempt) {
  if (c == Combiner::kGather) return gather_outcome(s, attempt, gathered_bytes(s));
  SliceOutcome o;
  o.slice = s;
  o.attempt = attempt;
  o.partial = identity_partial(c);
  o.partial.n = 10;
  o.partial.count = s + 1;  // count: 1 + 2 + ... over the slices
  return o;
}

// Runs `limit` more slices of the count_range and gather_range jobs, as worker w1.
void run_count_and_gather(Harness& h, std::uint64_t limit) {
  if (!h.sched.has_worker("w1")) h.hello("w1", 2);
  for (std::uint64_t n = 0; n < limit;) {
    auto ds = h.dispatch();
    if (ds.empty()) return;
    for (const Dispatch& d : ds) {
      const Combiner c =
          d.job->spec.kernel == "gather_range" ? Combiner::kGather : Combiner::kCount;
      for (const SliceRun& r : d.runs) {
        for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s, ++n) {
          h.report_one("w1", d.job->spec.job_id, count_or_gather_outcome(c, s, r.attempt));
        }
      }
    }
  }
}

// Writes a journal in DIR holding job "big", of 100 slices: over a lower limit's 10.
void journal_with_big_job(const TempDir& dir) {
  Harness h;
  Journal journal(options_in(dir));
  h.sched.set_log(&journal);
  REQUIRE(h.sched.submit(sum_spec("big", 100), h.now).ok());
}

// A broker started with a lower limit on DIR's journal: it keeps what it cannot restore, takes a
// new job of `new_id` (8 slices) and runs it, then rewrites its journal (`rewrite`) or only
// flushes it. With `then`, a job of that id runs after it, and the broker, which keeps one
// finished job, forgets the first before the rewrite. Returns how many jobs it could not restore.
int reopen_with_lower_limit(const TempDir& dir, const std::string& new_id, bool rewrite,
                            const char* then = nullptr) {
  SchedulerOptions small = test_options();
  small.limits.max_slices_per_job = 10;
  if (then != nullptr) small.max_finished_jobs = 1;
  Journal reopened(options_in(dir));
  Harness h(small);
  int kept = 0;
  for (auto& j : reopened.take_recovered()) {
    if (h.sched.restore(j, h.now).ok()) continue;
    reopened.keep_unrestored(std::move(j));
    ++kept;
  }
  h.sched.set_log(&reopened);
  REQUIRE(h.sched.submit(sum_spec(new_id, 8), h.now).ok());
  compute(h, new_id, random_values(8, 16), 1000);  // (and any restored job's slices before)
  REQUIRE(h.job(new_id).state == JobState::kDone);
  if (then != nullptr) {
    REQUIRE(h.sched.submit(sum_spec(then, 8), h.now).ok());
    compute(h, then, random_values(8, 16), 1000);
    REQUIRE(h.sched.find_job(new_id) == nullptr);
  }
  if (rewrite) {
    std::vector<const Job*> held;
    h.sched.jobs_in_order(held);
    REQUIRE(reopened.rewrite(held, h.now).ok());
  } else {
    REQUIRE(reopened.flush(h.now + 1s, true).ok());
  }
  return kept;
}

// Submits sum jobs of one slice per value, one after the other, each run to its end.
void run_sum_jobs(Harness& h, std::initializer_list<const char*> ids,
                  const std::vector<double>& values) {
  for (const char* id : ids) {
    REQUIRE(h.sched.submit(sum_spec(id, values.size()), h.now).ok());
    compute(h, id, values, values.size());
    REQUIRE(h.job(id).state == JobState::kDone);
  }
}

// Each recovered job's id and how many covered slices came back with it, in order.
using IdsAndCovered = std::vector<std::pair<std::string, std::size_t>>;
IdsAndCovered ids_and_covered(const std::vector<RecoveredJob>& jobs) {
  IdsAndCovered out;
  for (const RecoveredJob& j : jobs) out.emplace_back(j.spec.job_id, j.covered.size());
  return out;
}

// The result of a sum job over `values` (a slice each) computed without a break.
double uninterrupted_sum(const std::vector<double>& values) {
  Harness whole;
  REQUIRE(whole.sched.submit(sum_spec("whole", values.size()), whole.now).ok());
  compute(whole, "whole", values, values.size());
  REQUIRE(whole.job("whole").state == JobState::kDone);
  return whole.job("whole").result.value;
}

}  // namespace

TEST_CASE("journal gives back accepted jobs, covered slices and finished results after a reopen",
          "[broker]") {
  TempDir dir;
  const auto values = random_values(64, 3);
  const double reference = uninterrupted_sum(values);
  {
    Harness h;
    Journal journal(options_in(dir));
    h.sched.set_log(&journal);
    REQUIRE(h.sched.submit(sum_spec("done", 8), h.now).ok());
    compute(h, "done", values, 1000);
    REQUIRE(h.job("done").state == JobState::kDone);
    REQUIRE(h.sched.submit(sum_spec("s", 64), h.now).ok());
    CHECK(compute(h, "s", values, 20) == 20);  // the broker "crashes" with 44 slices to go
    REQUIRE(journal.flush(h.now + 1s).ok());
  }
  Journal reopened(options_in(dir));
  auto jobs = reopened.take_recovered();
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].spec.job_id == "done");
  CHECK(jobs[0].state == JobState::kDone);
  CHECK(jobs[1].spec.job_id == "s");
  CHECK(jobs[1].state == JobState::kRunning);
  CHECK(jobs[1].covered.size() == 20);

  Harness restarted;
  for (auto& j : jobs) REQUIRE(restarted.sched.restore(std::move(j), restarted.now).ok());
  CHECK(restarted.status("done").state == JobState::kDone);
  CHECK(compute(restarted, "s", values, 1000) == 44);  // only the uncovered slices run again
  const double value = restarted.job("s").result.value;
  CHECK(std::bit_cast<std::uint64_t>(value) == std::bit_cast<std::uint64_t>(reference));
}

TEST_CASE("journal batches covered slices instead of writing each one", "[broker]") {
  TempDir dir;
  const auto values = random_values(64, 4);
  Harness h;
  Journal journal(options_in(dir));
  h.sched.set_log(&journal);
  REQUIRE(journal.flush(h.now).ok());  // the flush clock starts now
  REQUIRE(h.sched.submit(sum_spec("s", 64), h.now).ok());
  const auto after_submit = dir.size();  // the job record is written at once
  CHECK(after_submit > 0);
  const std::uint64_t computed = compute(h, "s", values, 30);
  REQUIRE(computed >= 30);
  CHECK(dir.size() == after_submit);  // 30-odd covered slices, no write yet
  CHECK(journal.buffered_slices() == computed);
  REQUIRE(journal.flush(h.now + 50ms).ok());
  CHECK(dir.size() == after_submit);  // flush_ms not passed
  REQUIRE(journal.flush(h.now + 100ms).ok());
  CHECK(dir.size() > after_submit);  // one record for all of them
  CHECK(journal.buffered_slices() == 0);
}

TEST_CASE("journal cuts a torn last record and keeps everything before it", "[broker]") {
  TempDir dir;
  const auto values = random_values(16, 5);
  {
    Harness h;
    Journal journal(options_in(dir));
    h.sched.set_log(&journal);
    REQUIRE(h.sched.submit(sum_spec("s", 16), h.now).ok());
    compute(h, "s", values, 8);
    REQUIRE(journal.flush(h.now + 1s).ok());
  }
  const auto whole = dir.size();
  // A crash in the middle of the next write: half a record at the end.
  {
    const int fd = ::open(dir.file().c_str(), O_WRONLY | O_APPEND);
    REQUIRE(fd >= 0);
    const char junk[] = {40, 0, 0, 0, 1, 2, 3, 4, 2, 9, 9};
    REQUIRE(::write(fd, junk, sizeof junk) == static_cast<ssize_t>(sizeof junk));
    ::close(fd);
  }
  Journal reopened(options_in(dir));
  CHECK(reopened.replay().torn_bytes == 11);
  auto jobs = reopened.take_recovered();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].covered.size() == 8);
  CHECK(dir.size() <= whole);  // compacted, without the junk
}

TEST_CASE("journal skips a record whose checksum fails and stops there", "[broker]") {
  TempDir dir;
  {
    Harness h;
    Journal journal(options_in(dir));
    h.sched.set_log(&journal);
    REQUIRE(h.sched.submit(sum_spec("a", 4), h.now).ok());
    REQUIRE(h.sched.submit(sum_spec("b", 4), h.now).ok());
  }
  // Flip a byte in the second record's payload.
  {
    const int fd = ::open(dir.file().c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    const auto size = static_cast<off_t>(dir.size());
    char c = 0;
    REQUIRE(::pread(fd, &c, 1, size - 3) == 1);
    c = static_cast<char>(c ^ 0x5a);
    REQUIRE(::pwrite(fd, &c, 1, size - 3) == 1);
    ::close(fd);
  }
  Journal reopened(options_in(dir));
  auto jobs = reopened.take_recovered();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].spec.job_id == "a");
  CHECK(reopened.replay().torn_bytes > 0);
}

TEST_CASE("journal compaction forgets the oldest finished jobs beyond its cap", "[broker]") {
  TempDir dir;
  const auto values = random_values(4, 6);
  {
    Harness h;
    Journal journal(options_in(dir));
    h.sched.set_log(&journal);
    run_sum_jobs(h, {"j1", "j2", "j3"}, values);
    REQUIRE(h.sched.submit(sum_spec("open", 4), h.now).ok());
  }
  JournalOptions o = options_in(dir);
  o.max_finished = 2;
  {
    Journal reopened(o);
    CHECK(reopened.replay().forgotten == 1);
    auto jobs = reopened.take_recovered();
    REQUIRE(jobs.size() == 3);
    CHECK(jobs[0].spec.job_id == "j2");
    CHECK(jobs[2].spec.job_id == "open");
  }
  Journal again(o);  // the compacted file holds exactly those
  CHECK(again.replay().forgotten == 0);
  CHECK(again.take_recovered().size() == 3);
}

// While alive, this process may not grow a file beyond `bytes`: writes past it fail with EFBIG
// (SIGXFSZ, which would kill us, is ignored meanwhile) — a full disk, for one file.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_) == 0);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit l = old_;
    l.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &l) == 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
};

// A broker that keeps one finished job, its covered slices written only with a final or job
// record (flush_ms is a minute): jobs "a" and "b", 4 slices each, run to their end while DIR's
// file cannot grow, so both final writes fail and stay in memory, and "a" is forgotten.
// `while_full(h, journal)` runs before the disk has room again, `after(h, journal)` once it has.
template <typename Full, typename After>
void a_and_b_on_a_full_disk(const TempDir& dir, Full&& while_full, After&& after) {
  SchedulerOptions so = test_options();
  so.max_finished_jobs = 1;
  JournalOptions jo = options_in(dir);
  jo.flush_ms = 60'000;
  Harness h(so);
  Journal journal(jo);
  h.sched.set_log(&journal);
  const auto values = random_values(4, 9);
  REQUIRE(h.sched.submit(sum_spec("a", 4), h.now).ok());
  REQUIRE(h.sched.submit(sum_spec("b", 4), h.now).ok());
  {
    FileSizeLimit full(dir.size());
    compute(h, "a", values, 100);
    compute(h, "b", values, 100);
    REQUIRE(h.sched.find_job("a") == nullptr);
    while_full(h, journal);
  }
  after(h, journal);
}

TEST_CASE("journal keeps what a failed write left as bytes, written once the disk has room again",
          "[broker]") {
  TempDir dir;
  a_and_b_on_a_full_disk(
      dir, [](Harness& h, Journal& journal) { CHECK_FALSE(journal.flush(h.now, true).ok()); },
      [](Harness& h, Journal& journal) { REQUIRE(journal.flush(h.now, true).ok()); });
  Journal reopened(options_in(dir));
  auto jobs = reopened.take_recovered();
  REQUIRE(jobs.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    INFO("job " << i);
    CHECK(jobs[i].spec.job_id == (i == 0 ? "a" : "b"));
    CHECK(jobs[i].state == JobState::kDone);
    CHECK(jobs[i].covered.size() == 4);
  }
}

// What a failed write left may be the records of a job since forgotten: behind the job record
// of a new job of the same id, a replay would give them to the new job.
TEST_CASE(
    "journal writes what a failed write left before a new job's record, so a new job of a "
    "forgotten id does not take the old job's slices",
    "[broker]") {
  TempDir dir;
  a_and_b_on_a_full_disk(
      dir, [](Harness&, Journal&) {}, [](Harness& h, Journal&) {  // a new job of id "a"
        REQUIRE(h.sched.submit(sum_spec("a", 40), h.now).ok());
      });
  Journal reopened(options_in(dir));
  auto jobs = reopened.take_recovered();
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].spec.job_id == "b");
  CHECK(jobs[0].state == JobState::kDone);
  CHECK(jobs[1].spec.job_id == "a");
  CHECK(jobs[1].spec.count == 400);
  CHECK_FALSE(job_state_final(jobs[1].state));  // before: done, with the old job's 4 slices
  CHECK(jobs[1].covered.empty());
}

TEST_CASE("journal refuses a second broker on the same directory", "[broker]") {
  TempDir dir;
  Journal first(options_in(dir));
  CHECK_THROWS_AS(Journal(options_in(dir)), SetupError);
}

TEST_CASE("journal keeps a cancelled job cancelled", "[broker]") {
  TempDir dir;
  {
    Harness h;
    Journal journal(options_in(dir));
    h.sched.set_log(&journal);
    REQUIRE(h.sched.submit(sum_spec("c", 4), h.now).ok());
    REQUIRE(h.sched.cancel("c", h.now).ok());
  }
  Journal reopened(options_in(dir));
  auto jobs = reopened.take_recovered();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].state == JobState::kCancelled);
  Harness restarted;
  REQUIRE(restarted.sched.restore(std::move(jobs[0]), restarted.now).ok());
  CHECK(restarted.status("c").state == JobState::kCancelled);
  restarted.hello("w1", 4);
  CHECK(restarted.dispatch().empty());
}

TEST_CASE(
    "journal restores a job whose parameter names this broker's kernel does not take: an earlier "
    "broker accepted it, and an upgrade must not lose it",
    "[broker]") {
  Harness h;
  JobSpec fresh = sum_spec("new", 4);
  fresh.kernel = "plain_sum";
  fresh.params.set("bins", std::int64_t{10});
  auto refused = h.sched.submit(fresh, h.now);
  REQUIRE_FALSE(refused.ok());  // a new submit with that name is refused
  CHECK(refused.error().message.find("has no parameter 'bins'") != std::string::npos);

  RecoveredJob old;
  old.spec = fresh;
  old.spec.job_id = "old";
  REQUIRE(h.sched.restore(std::move(old), h.now).ok());
  CHECK(h.status("old").state == JobState::kQueued);
  h.hello("w1", 4);
  CHECK_FALSE(h.dispatch().empty());  // and it runs (a worker judges its parameters)
}

TEST_CASE("journal restores a count's merged state and a gather job's bytes exactly", "[broker]") {
  TempDir dir;
  {
    Harness h;
    Journal journal(options_in(dir));
    h.sched.set_log(&journal);
    submit_range(h, "c", "count_range");
    submit_range(h, "g", "gather_range");
    run_count_and_gather(h, 8);
    REQUIRE(journal.flush(h.now + 1s).ok());
  }
  std::vector<std::string> want;
  for (std::uint64_t s = 0; s < 10; ++s) want.push_back(gathered_bytes(s));
  {
    Journal reopened(options_in(dir));
    Harness h;
    for (auto& j : reopened.take_recovered()) REQUIRE(h.sched.restore(std::move(j), h.now).ok());
    h.sched.set_log(&reopened);
    CHECK(h.status("c").done + h.status("g").done == 8);
    run_count_and_gather(h, 1000);
    REQUIRE(h.status("c").state == JobState::kDone);
    REQUIRE(h.status("g").state == JobState::kDone);
    CHECK(h.job("c").result.value == 55.0);  // 1 + 2 + ... + 10, each slice counted once
    CHECK(h.job("g").full_result().gathered == want);
  }
  // Finished, they come back finished, with their results.
  Journal again(options_in(dir));
  Harness h;
  for (auto& j : again.take_recovered()) REQUIRE(h.sched.restore(std::move(j), h.now).ok());
  CHECK(h.status("c").state == JobState::kDone);
  CHECK(h.job("c").result.value == 55.0);
  CHECK(h.job("g").full_result().gathered == want);
}

TEST_CASE(
    "journal restores a job of a plugin's kernel before any worker offers it again, and only a "
    "worker announcing the same definition then gets its slices",
    "[broker]") {
  TempDir dir;
  const KernelSpec plugged{"plugcount",  Combiner::kCount, KernelShape::kRange,
                           DType::kNone, DType::kNone,     "counts"};
  auto announce = [](Harness& h, const std::string& id, const KernelSpec& spec) {
    msg::Hello hello;
    hello.worker_id = id;
    hello.credit = 4;
    hello.kernel_specs = {spec};
    REQUIRE(h.sched.hello(hello, h.now) != HelloVerdict::kRejected);
  };
  {
    Harness h;
    Journal journal(options_in(dir));
    h.sched.set_log(&journal);
    announce(h, "w1", plugged);
    h.submit(100, 10, "plugged", "plugcount");
    REQUIRE(journal.flush(h.now + 1s).ok());
  }
  Journal reopened(options_in(dir));
  Harness h;  // a restarted broker: no worker has announced anything yet
  for (auto& j : reopened.take_recovered()) REQUIRE(h.sched.restore(std::move(j), h.now).ok());
  REQUIRE(h.sched.find_job("plugged") != nullptr);
  CHECK(h.status("plugged").state == JobState::kQueued);
  h.hello("builtin-only", 4);
  CHECK(h.dispatch().empty());
  announce(h, "w2", plugged);
  KernelSpec redefined = plugged;
  redefined.combiner = Combiner::kSum;
  announce(h, "other-definition", redefined);  // disagrees with what w2 offers: gets none of it
  const auto d = h.dispatch();
  REQUIRE(d.size() == 1);
  CHECK(d[0].worker_id == "w2");
  CHECK(d[0].job->spec.job_id == "plugged");
}

TEST_CASE("journal cuts a partly written record, so the records written on the next try replay",
          "[broker]") {
  TempDir dir;
  const auto values = random_values(64, 12);
  JournalOptions jo = options_in(dir);
  jo.flush_ms = 60'000;  // the covered slices stay buffered until the forced flushes below
  {
    Harness h;
    Journal journal(jo);
    h.sched.set_log(&journal);
    REQUIRE(h.sched.submit(sum_spec("a", 64), h.now).ok());
    REQUIRE(compute(h, "a", values, 20) == 20);
    {
      FileSizeLimit full(dir.size() + 10);  // room for 10 bytes of the covered record
      CHECK_FALSE(journal.flush(h.now, true).ok());
    }
    CHECK(dir.size() == journal.file_bytes());  // the 10 bytes were cut
    REQUIRE(journal.flush(h.now, true).ok());
    REQUIRE(h.sched.submit(sum_spec("b", 8), h.now).ok());
  }
  Journal reopened(options_in(dir));
  CHECK(reopened.replay().torn_bytes == 0);
  CHECK(ids_and_covered(reopened.take_recovered()) == IdsAndCovered{{"a", 20}, {"b", 0}});
}

TEST_CASE(
    "journal grown past its rewrite size is written anew from the jobs the broker holds, and a "
    "reopen gives back those jobs and no forgotten one",
    "[broker]") {
  TempDir dir;
  const auto values = random_values(64, 13);
  const double reference = uninterrupted_sum(values);
  SchedulerOptions so = test_options();
  so.max_finished_jobs = 2;
  JournalOptions jo = options_in(dir);
  jo.rewrite_bytes = 4096;
  std::map<std::string, double> results;
  {
    Harness h(so);
    Journal journal(jo);
    h.sched.set_log(&journal);
    for (int i = 0; i < 12; ++i) {
      const std::string id = std::string("j").append(std::to_string(i));
      REQUIRE(h.sched.submit(sum_spec(id, 64), h.now).ok());
      compute(h, id, values, 1000);
      results[id] = h.job(id).result.value;
    }
    REQUIRE(h.sched.submit(sum_spec("open", 64), h.now).ok());
    REQUIRE(compute(h, "open", values, 20) == 20);
    REQUIRE(journal.flush(h.now + 1s).ok());
    REQUIRE(journal.wants_rewrite());
    REQUIRE(compute(h, "open", values, 4) == 4);  // buffered: the rewrite takes them from memory
    REQUIRE(journal.buffered_slices() == 4);
    const auto before = dir.size();
    std::vector<const Job*> held;
    h.sched.jobs_in_order(held);
    REQUIRE(held.size() == 3);
    REQUIRE(journal.rewrite(held, h.now + 1s).ok());
    CHECK(dir.size() < before / 3);  // 13 jobs' records down to 3 jobs'
    CHECK(dir.size() == journal.file_bytes());
    CHECK_FALSE(journal.wants_rewrite());
    CHECK(journal.buffered_slices() == 0);
    // Appending goes on in the new file: the open job's next slices.
    REQUIRE(compute(h, "open", values, 12) == 12);
    REQUIRE(journal.flush(h.now + 2s).ok());
  }
  Journal reopened(options_in(dir));
  CHECK(reopened.replay().bad_records == 0);
  auto jobs = reopened.take_recovered();
  REQUIRE(jobs.size() == 3);
  CHECK(jobs[0].spec.job_id == "j10");
  CHECK(jobs[1].spec.job_id == "j11");
  CHECK(jobs[2].spec.job_id == "open");
  CHECK(jobs[2].covered.size() == 36);  // each once
  Harness restarted;
  for (auto& j : jobs) REQUIRE(restarted.sched.restore(std::move(j), restarted.now).ok());
  for (const char* id : {"j10", "j11"}) {
    INFO(id);
    CHECK(restarted.status(id).state == JobState::kDone);
    CHECK(restarted.status(id).done == 64);
    CHECK(restarted.job(id).collector.completion_order().size() == 64);
    CHECK(restarted.job(id).result.value == results[id]);
  }
  CHECK(compute(restarted, "open", values, 1000) == 28);  // only the uncovered slices run again
  const double value = restarted.job("open").result.value;
  CHECK(std::bit_cast<std::uint64_t>(value) == std::bit_cast<std::uint64_t>(reference));
}

TEST_CASE(
    "journal rewrite keeps a finished job whose per-slice results were released as its result "
    "and covered count, and a restored broker neither pages nor recounts it",
    "[broker]") {
  TempDir dir;
  const auto values = random_values(64, 14);
  SchedulerOptions so = test_options();
  so.max_finished_slices = 64;  // each newer finished job releases the one before
  double old_value = 0;
  {
    Harness h(so);
    Journal journal(options_in(dir));
    h.sched.set_log(&journal);
    run_sum_jobs(h, {"old", "new"}, values);
    REQUIRE(h.job("old").collector.results_released());
    old_value = h.job("old").result.value;
    std::vector<const Job*> held;
    h.sched.jobs_in_order(held);
    REQUIRE(journal.rewrite(held, h.now).ok());
  }
  Journal reopened(options_in(dir));
  auto jobs = reopened.take_recovered();
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].results_released);
  CHECK(jobs[0].released_covered == 64);
  CHECK(jobs[0].covered.empty());
  CHECK_FALSE(jobs[1].results_released);
  CHECK(jobs[1].covered.size() == 64);
  Harness restarted(so);
  for (auto& j : jobs) REQUIRE(restarted.sched.restore(std::move(j), restarted.now).ok());
  const JobStatus st = restarted.status("old");
  CHECK(st.state == JobState::kDone);
  CHECK(st.done == 64);
  CHECK(restarted.job("old").result.value == old_value);
  CHECK(restarted.job("old").collector.results_released());
  CHECK_FALSE(restarted.job("new").collector.results_released());
}

TEST_CASE(
    "journal rewrite keeps a job the broker could not restore, for a later broker, until a new "
    "job takes its id",
    "[broker]") {
  TempDir dir;
  journal_with_big_job(dir);
  CHECK(reopen_with_lower_limit(dir, "small", true) == 1);
  {
    Journal again(options_in(dir));
    auto jobs = again.take_recovered();
    REQUIRE(jobs.size() == 2);
    CHECK(jobs[0].spec.job_id == "big");
    CHECK(jobs[1].spec.job_id == "small");
    Harness h;
    for (auto& j : jobs) CHECK(h.sched.restore(std::move(j), h.now).ok());
  }
  // Until a new job takes its id: then the journal holds that one alone.
  CHECK(reopen_with_lower_limit(dir, "big", true) == 1);
  Journal last(options_in(dir));
  CHECK(last.replay().bad_records == 0);
  auto jobs = last.take_recovered();
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].spec.job_id == "small");
  CHECK(jobs[1].spec.job_id == "big");
  CHECK(jobs[1].spec.count == 80);  // the new one's 8 slices
  CHECK(jobs[1].covered.size() == 8);
}

TEST_CASE(
    "journal gives a reused id's records to the new job, not the forgotten one, so a reopen "
    "before any rewrite resumes the new job",
    "[broker]") {
  TempDir dir;
  JournalOptions jo = options_in(dir);
  jo.max_finished = 1;
  SchedulerOptions so = test_options();
  so.max_finished_jobs = 1;  // "x" is forgotten once "y" finishes
  const auto values = random_values(32, 15);
  {
    Harness h(so);
    Journal journal(jo);
    h.sched.set_log(&journal);
    REQUIRE(h.sched.submit(sum_spec("x", 8), h.now).ok());
    compute(h, "x", values, 1000);
    REQUIRE(h.sched.submit(sum_spec("y", 8), h.now).ok());
    compute(h, "y", values, 1000);
    REQUIRE(h.sched.find_job("x") == nullptr);
    REQUIRE(h.sched.submit(sum_spec("x", 32), h.now).ok());  // a new job of the same id
    REQUIRE(compute(h, "x", values, 4) == 4);
    REQUIRE(journal.flush(h.now + 1s, true).ok());
  }
  Journal reopened(jo);
  CHECK(reopened.replay().bad_records == 0);
  CHECK(reopened.replay().replaced == 1);
  auto jobs = reopened.take_recovered();
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].spec.job_id == "y");
  CHECK(jobs[1].spec.job_id == "x");
  CHECK(jobs[1].spec.count == 320);
  CHECK(jobs[1].state == JobState::kRunning);
  CHECK(jobs[1].covered.size() == 4);  // its own slices, none of the old job's 8
}

// The id is the new job's from its record on, even once the broker forgets that job: a rewrite
// then must not write the unrestored job back (a later broker would restore and run it again).
TEST_CASE(
    "journal rewrite does not bring back an unrestorable job whose id a new job took, once the "
    "new job is forgotten",
    "[broker]") {
  TempDir dir;
  journal_with_big_job(dir);
  CHECK(reopen_with_lower_limit(dir, "big", true, "other") == 1);
  Journal last(options_in(dir));
  auto jobs = last.take_recovered();
  REQUIRE(jobs.size() == 1);  // before: the old "big" of 100 slices came back first
  CHECK(jobs[0].spec.job_id == "other");
}

TEST_CASE("journal gives the records after a new job of an unrestorable job's id to the new job",
          "[broker]") {
  TempDir dir;
  journal_with_big_job(dir);
  CHECK(reopen_with_lower_limit(dir, "big", false) == 1);
  Journal last(options_in(dir));
  CHECK(last.replay().bad_records == 0);
  auto jobs = last.take_recovered();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].spec.count == 80);
  CHECK(jobs[0].covered.size() == 8);
  CHECK(jobs[0].state == JobState::kDone);
}

// Written by the broker at b44ae0e, before final records carried `released` and before the CRC
// came from zlib: job "done" (4 slices of the sum of 1.5, -2.25, 3.125 and 1e-3, finished) and
// job "open" (8 slices, the first 4 covered). A broker must read the journals of the one before.
constexpr const char* kJournalB44ae0e =
    "0301000025b9a88201928aa66a6f625f6964a4646f6e65a66b65726e656ca373756da5696e70757484a37572"
    "69a573686d3a78a5647479706502ab627974655f6f666673657400a66c656e67746800a6696e7075743284a3"
    "757269a0a5647479706500ab627974655f6f666673657400a66c656e67746800a66f757470757484a3757269"
    "a0a5647479706500ab627974655f6f666673657400a66c656e67746800a5666972737400a5636f756e7428aa"
    "736c6963655f73697a650aa6706172616d7380aa706172616d5f736574739086a46e616d65a373756da8636f"
    "6d62696e657201a5736861706501ab696e7075745f647479706500ac6f75747075745f647479706500a46865"
    "6c70a046000000dcddc83c0295a4646f6e659494000acb3ff80000000000000094010acbc002000000000000"
    "0094020acb40090000000000000094030acb3f50624dd2f1a9fc0090c297010000000090a04d000000502b67"
    "670395a4646f6e650300a084a576616c7565cb4003020c49ba5e35a876617269616e636500a66d6572676564"
    "970128cb4003020c49ba5e35cb3c9fc000000000000090a0a86761746865726564900301000092549ee00192"
    "8aa66a6f625f6964a46f70656ea66b65726e656ca373756da5696e70757484a3757269a573686d3a78a56474"
    "79706502ab627974655f6f666673657400a66c656e67746800a6696e7075743284a3757269a0a56474797065"
    "00ab627974655f6f666673657400a66c656e67746800a66f757470757484a3757269a0a5647479706500ab62"
    "7974655f6f666673657400a66c656e67746800a5666972737400a5636f756e7450aa736c6963655f73697a65"
    "0aa6706172616d7380aa706172616d5f736574739086a46e616d65a373756da8636f6d62696e657201a57368"
    "61706501ab696e7075745f647479706500ac6f75747075745f647479706500a468656c70a0460000006f5947"
    "ee0295a46f70656e9494000acb3ff80000000000000094010acbc0020000000000000094020acb4009000000"
    "0000000094030acb3f50624dd2f1a9fc0090c297010000000090a0";

TEST_CASE("journal reads a file an earlier broker wrote, so an upgrade loses no job", "[broker]") {
  TempDir dir;
  {
    std::string bytes;
    const std::string hex = kJournalB44ae0e;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
      bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    REQUIRE(bytes.size() == 775);
    std::FILE* f = std::fopen(dir.file().c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
    std::fclose(f);
  }
  for (int open = 0; open < 2; ++open) {  // as written then, and as compacted by this broker
    INFO("open " << open);
    Journal journal(options_in(dir));
    CHECK(journal.replay().bad_records == 0);
    CHECK(journal.replay().torn_bytes == 0);
    auto jobs = journal.take_recovered();
    REQUIRE(jobs.size() == 2);
    CHECK(jobs[0].spec.job_id == "done");
    CHECK(jobs[0].state == JobState::kDone);
    CHECK(jobs[0].covered.size() == 4);
    CHECK_FALSE(jobs[0].results_released);
    REQUIRE(jobs[0].result.has_value());
    CHECK(jobs[0].result->value == 2.376);  // (1.5 - 2.25) + (3.125 + 1e-3), as printed then
    CHECK(jobs[1].spec.job_id == "open");
    CHECK(jobs[1].state == JobState::kRunning);
    CHECK(jobs[1].covered.size() == 4);
  }
}

TEST_CASE(
    "journal splits a gather job's covered records by their bytes when it writes, compacts and "
    "rewrites, and gives every slice's bytes back",
    "[broker]") {
  TempDir dir;
  JournalOptions jo = options_in(dir);
  jo.record_bytes = 25;  // two slices' bytes ("bytes of 0", 10 bytes each) per record
  std::vector<std::string> want;
  for (std::uint64_t s = 0; s < 10; ++s) want.push_back(gathered_bytes(s));
  // job + 5 covered records of 2 slices + final; with one record per job it would be 3.
  constexpr std::uint64_t kRecords = 7;
  {
    Harness h;
    Journal journal(jo);
    h.sched.set_log(&journal);
    submit_range(h, "g", "gather_range");
    run_count_and_gather(h, 1000);
    REQUIRE(h.status("g").state == JobState::kDone);
  }
  for (int pass = 0; pass < 2; ++pass) {  // as written, then as compacted at the first open
    INFO("pass " << pass);
    Journal reopened(jo);
    CHECK(reopened.replay().records == kRecords);
    Harness h;
    for (auto& j : reopened.take_recovered()) REQUIRE(h.sched.restore(std::move(j), h.now).ok());
    CHECK(h.job("g").full_result().gathered == want);
    if (pass == 1) {
      std::vector<const Job*> held;
      h.sched.jobs_in_order(held);
      REQUIRE(reopened.rewrite(held, h.now).ok());
    }
  }
  Journal rewritten(jo);
  CHECK(rewritten.replay().records == kRecords);
  auto jobs = rewritten.take_recovered();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].gathered == want);
}

TEST_CASE("journal counts gathered bytes toward flush_bytes, so big results leave sooner",
          "[broker]") {
  TempDir dir;
  JournalOptions jo = options_in(dir);
  jo.flush_ms = 60'000;
  // Four slices' entries (4 x 32 bytes) are below it; with their bytes (4 x (32 + 10)), above.
  jo.flush_bytes = 150;
  Harness h;
  Journal journal(jo);
  h.sched.set_log(&journal);
  REQUIRE(journal.flush(h.now).ok());
  submit_range(h, "g", "gather_range");
  const auto after_submit = dir.size();
  run_count_and_gather(h, 4);
  REQUIRE(journal.buffered_slices() == 4);
  const bool entries_alone_below =
      4 * (2 * sizeof(std::uint64_t) + 2 * sizeof(double)) < jo.flush_bytes;
  REQUIRE(entries_alone_below);
  REQUIRE(journal.flush(h.now + 1ms).ok());
  CHECK(journal.buffered_slices() == 0);
  CHECK(dir.size() > after_submit);
}

TEST_CASE(
    "journal goes on appending while a rewrite's thread writes, and the rewritten file holds "
    "what was written meanwhile",
    "[broker]") {
  TempDir dir;
  const auto values = random_values(64, 17);
  {
    Harness h;
    Journal journal(options_in(dir));
    h.sched.set_log(&journal);
    REQUIRE(h.sched.submit(sum_spec("before", 64), h.now).ok());
    REQUIRE(compute(h, "before", values, 20) == 20);  // buffered: the rewrite flushes it first
    std::vector<const Job*> held;
    h.sched.jobs_in_order(held);
    REQUIRE(journal.start_rewrite(held, h.now).ok());
    REQUIRE(journal.rewriting());
    // Meanwhile: a new job, more slices of the old one, written to the old file.
    const auto old_file_before = dir.size();
    REQUIRE(h.sched.submit(sum_spec("during", 8), h.now).ok());
    REQUIRE(compute(h, "before", values, 12) == 12);
    REQUIRE(journal.flush(h.now + 1s, true).ok());
    CHECK(dir.size() > old_file_before);
    auto done = journal.finish_rewrite(true);
    REQUIRE(done.has_value());
    REQUIRE(done->ok());
    CHECK_FALSE(journal.rewriting());
    CHECK(dir.size() == journal.file_bytes());
    CHECK_FALSE(std::filesystem::exists(dir.file() + ".tmp"));
  }
  Journal reopened(options_in(dir));
  CHECK(reopened.replay().bad_records == 0);
  CHECK(reopened.replay().torn_bytes == 0);
  CHECK(ids_and_covered(reopened.take_recovered()) == IdsAndCovered{{"before", 32}, {"during", 0}});
}

TEST_CASE(
    "journal whose rewrite cannot be written keeps the old file as the journal, whole, and "
    "removes the new one",
    "[broker]") {
  TempDir dir;
  JournalOptions jo = options_in(dir);
  jo.rewrite_bytes = 1;  // wants a rewrite whenever the file has doubled
  const auto values = random_values(64, 18);
  {
    Harness h;
    Journal journal(jo);
    h.sched.set_log(&journal);
    REQUIRE(h.sched.submit(sum_spec("a", 64), h.now).ok());
    REQUIRE(compute(h, "a", values, 20) == 20);
    REQUIRE(journal.flush(h.now + 1s, true).ok());
    REQUIRE(journal.wants_rewrite());
    const auto size = dir.size();
    std::vector<const Job*> held;
    h.sched.jobs_in_order(held);
    {
      FileSizeLimit full(64);  // the new file's first write fails; the old one gets none
      REQUIRE(journal.start_rewrite(held, h.now + 1s).ok());
      auto done = journal.finish_rewrite(true);
      REQUIRE(done.has_value());
      CHECK_FALSE(done->ok());
    }
    CHECK(dir.size() == size);
    CHECK_FALSE(std::filesystem::exists(dir.file() + ".tmp"));
    CHECK_FALSE(journal.wants_rewrite());        // not again until the file has doubled
    REQUIRE(compute(h, "a", values, 12) == 12);  // and appending goes on
    REQUIRE(journal.flush(h.now + 2s, true).ok());
  }
  Journal reopened(options_in(dir));
  auto jobs = reopened.take_recovered();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].covered.size() == 32);
}

TEST_CASE(
    "journal whose old file cannot take the buffer starts no rewrite, and does not ask again "
    "until the file has doubled",
    "[broker]") {
  TempDir dir;
  JournalOptions jo = options_in(dir);
  jo.rewrite_bytes = 1;
  Harness h;
  Journal journal(jo);
  h.sched.set_log(&journal);
  REQUIRE(h.sched.submit(sum_spec("a", 64), h.now).ok());
  REQUIRE(compute(h, "a", random_values(64, 19), 20) == 20);
  REQUIRE(journal.flush(h.now + 1s, true).ok());
  REQUIRE(compute(h, "a", random_values(64, 19), 12) == 12);  // buffered
  REQUIRE(journal.wants_rewrite());
  std::vector<const Job*> held;
  h.sched.jobs_in_order(held);
  {
    FileSizeLimit full(dir.size());
    CHECK_FALSE(journal.start_rewrite(held, h.now + 1s).ok());
  }
  CHECK_FALSE(journal.rewriting());
  CHECK_FALSE(journal.wants_rewrite());
  CHECK_FALSE(std::filesystem::exists(dir.file() + ".tmp"));
}

// Once renamed, the new file is the journal whatever follows: a directory that cannot be synced
// after the rename does not undo it, and the rewrite says so (the journal then syncs the
// directory before its next sync of records).
TEST_CASE(
    "journal rewrite hands over its renamed file when the directory cannot be synced, and says so",
    "[broker]") {
  TempDir dir;
  const std::string not_a_dir = dir.path + "/plain";
  std::ofstream(not_a_dir) << "x";
  auto contents = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  for (const bool synced : {true, false}) {
    INFO("directory synced: " << synced);
    const std::string name = dir.path + (synced ? "/good" : "/bad");
    auto rewrite =
        JournalRewrite::start({name, name + ".tmp", synced ? dir.path : not_a_dir}, "records");
    REQUIRE(rewrite.ok());
    auto fd = rewrite.value()->finish("+tail");
    REQUIRE(fd.ok());
    ::close(fd.value());
    CHECK(rewrite.value()->dir_synced() == synced);
    CHECK(contents(name) == "records+tail");
    CHECK_FALSE(std::filesystem::exists(name + ".tmp"));
  }
}

TEST_CASE("journal closed while its rewrite is written finishes it, with what came after",
          "[broker]") {
  TempDir dir;
  const auto values = random_values(64, 20);
  SchedulerOptions so = test_options();
  so.max_finished_jobs = 1;  // "x" is in the old file, not in what the broker holds
  {
    Harness h(so);
    Journal journal(options_in(dir));
    h.sched.set_log(&journal);
    run_sum_jobs(h, {"x", "y"}, {values.begin(), values.begin() + 8});
    REQUIRE(h.sched.submit(sum_spec("a", 64), h.now).ok());
    REQUIRE(compute(h, "a", values, 20) == 20);
    std::vector<const Job*> held;
    h.sched.jobs_in_order(held);
    REQUIRE(held.size() == 2);
    REQUIRE(journal.start_rewrite(held, h.now).ok());
    REQUIRE(compute(h, "a", values, 12) == 12);  // buffered: the close flushes them
  }
  CHECK_FALSE(std::filesystem::exists(dir.file() + ".tmp"));
  Journal reopened(options_in(dir));
  auto jobs = reopened.take_recovered();
  REQUIRE(jobs.size() == 2);  // the rewritten file: "x" is gone
  CHECK(jobs[0].spec.job_id == "y");
  CHECK(jobs[1].spec.job_id == "a");
  CHECK(jobs[1].covered.size() == 32);
}
