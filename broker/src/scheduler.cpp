// Parts: 1. set-up and job ids  2. submit, cancel, status  3. workers and leases
//        4. results  5. dispatch  6. finishing jobs
#include "scheduler.hpp"

#include <algorithm>
#include <cstdio>
#include <msgpack.hpp>
#include <utility>

namespace zwq::broker {

// ---- 1. set-up and job ids ----

Scheduler::Scheduler(SchedulerOptions options, const KernelRegistry& kernels)
    : options_(std::move(options)), kernels_(kernels) {
  // The job being finished is never forgotten while it is still being worked on.
  options_.max_finished_jobs = std::max<std::size_t>(options_.max_finished_jobs, 1);
  if (options_.limits.default_slice_size == 0) options_.limits.default_slice_size = 1;
}

Scheduler::~Scheduler() = default;

std::string Scheduler::new_job_id() {
  char buf[48];
  for (;;) {
    std::snprintf(buf, sizeof buf, "job-%08x-%llu",
                  static_cast<unsigned>(options_.epoch & 0xffffffffu),
                  static_cast<unsigned long long>(next_serial_));
    if (jobs_.count(buf) == 0) return buf;
    ++next_serial_;
  }
}

// ---- 2. submit, cancel, status ----

Result<msg::SubmitRep> Scheduler::submit(JobSpec spec, TimePoint now) {
  if (!spec.job_id.empty()) {
    if (const Job* old = find_job(spec.job_id)) {
      return msg::SubmitRep{old->spec.job_id, old->collector.total(), old->spec.slice_size, true};
    }
  }
  auto kernel = validate_job(spec, kernels_, options_.limits);
  if (!kernel.ok()) return kernel.error();

  auto job = std::make_unique<Job>();
  job->serial = next_serial_++;
  if (spec.job_id.empty()) spec.job_id = new_job_id();
  spec.slice_size = effective_slice_size(spec, options_.limits);
  job->spec = std::move(spec);
  job->kernel = kernel.value();
  msgpack::sbuffer buf;
  msgpack::pack(buf, job->spec);
  job->spec_bytes.assign(buf.data(), buf.size());
  job->submitted = now;

  const SliceGeometry geo{job->spec.first, job->spec.count, job->spec.slice_size};
  std::size_t bins = 0;
  if (job->kernel->combiner == Combiner::kHistogram) {
    // The same default as run_kernel(), so the identity has the workers' shape.
    bins =
        static_cast<std::size_t>(std::max<std::int64_t>(0, job->spec.params.get_int("bins", 10)));
  }
  job->collector = JobCollector(geo, job->kernel->combiner, bins);
  job->pending.reset(job->collector.total());

  Job& j = *job;
  jobs_.emplace(j.spec.job_id, std::move(job));
  by_serial_.emplace(j.serial, &j);
  msg::SubmitRep rep{j.spec.job_id, j.collector.total(), j.spec.slice_size, false};
  if (j.collector.total() == 0) {
    complete_job(j, now);
  } else {
    runnable_.emplace(j.serial, &j);
  }
  return rep;
}

Result<JobStatus> Scheduler::cancel(const std::string& job_id, TimePoint now) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    return make_error(ErrorCode::kUnknownJob, "no job with id '" + job_id + "'");
  }
  Job& job = *it->second;
  if (!job.final()) {
    job.error_code = ErrorCode::kCancelled;
    job.error = "job " + job_id + " was cancelled";
    finalize_job(job, JobState::kCancelled, now);
  }
  return job.status(now);
}

const Job* Scheduler::find_job(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

std::vector<JobStatus> Scheduler::all_status(TimePoint now) const {
  std::vector<JobStatus> out;
  out.reserve(by_serial_.size());
  for (const auto& [serial, job] : by_serial_) out.push_back(job->status(now));
  return out;
}

// ---- 3. workers and leases ----

Scheduler::Worker* Scheduler::find_worker(const std::string& id) {
  auto it = worker_index_.find(id);
  return it == worker_index_.end() ? nullptr : it->second;
}

bool Scheduler::has_worker(const std::string& worker_id) const {
  return worker_index_.count(worker_id) != 0;
}

void Scheduler::remove_worker(const std::string& id) {
  worker_index_.erase(id);
  auto it = std::find_if(workers_.begin(), workers_.end(),
                         [&](const std::unique_ptr<Worker>& w) { return w->id == id; });
  if (it != workers_.end()) workers_.erase(it);
}

HelloVerdict Scheduler::hello(const msg::Hello& m, TimePoint now) {
  if (m.credit == 0 || m.worker_id.empty()) return HelloVerdict::kRejected;
  Worker* w = find_worker(m.worker_id);
  const bool replaced = w != nullptr;
  if (w != nullptr) {
    requeue_leases(*w);
  } else {
    workers_.push_back(std::make_unique<Worker>());
    w = workers_.back().get();
    w->id = m.worker_id;
    worker_index_.emplace(w->id, w);
  }
  w->host = m.host;
  w->pid = m.pid;
  w->credit = m.credit;
  w->kernels = m.kernels;
  w->last_seen = now;
  return replaced ? HelloVerdict::kReplaced : HelloVerdict::kRegistered;
}

bool Scheduler::heartbeat(const std::string& worker_id, TimePoint now) {
  Worker* w = find_worker(worker_id);
  if (w == nullptr) {
    ++counters_.unknown_worker;
    return false;
  }
  w->last_seen = now;
  return true;
}

bool Scheduler::bye(const std::string& worker_id, TimePoint) {
  Worker* w = find_worker(worker_id);
  if (w == nullptr) {
    ++counters_.unknown_worker;
    return false;
  }
  requeue_leases(*w);
  remove_worker(worker_id);
  return true;
}

bool Scheduler::lose_worker(const std::string& worker_id, TimePoint) {
  Worker* w = find_worker(worker_id);
  if (w == nullptr) return false;
  requeue_leases(*w);
  remove_worker(worker_id);
  ++counters_.workers_lost;
  return true;
}

std::vector<std::string> Scheduler::expire(TimePoint now) {
  const auto limit = Millis(std::uint64_t{options_.heartbeat_ms} * options_.liveness);
  std::vector<std::string> dead;
  for (const auto& w : workers_) {
    if (now - w->last_seen > limit) dead.push_back(w->id);
  }
  for (const auto& id : dead) {
    requeue_leases(*find_worker(id));
    remove_worker(id);
    ++counters_.workers_expired;
  }
  return dead;
}

std::vector<WorkerStatus> Scheduler::workers(TimePoint now) const {
  std::vector<WorkerStatus> out;
  out.reserve(workers_.size());
  for (const auto& w : workers_) {
    WorkerStatus st;
    st.worker_id = w->id;
    st.host = w->host;
    st.pid = w->pid;
    st.state = w->inflight > 0 ? "busy" : "idle";
    st.credit = w->credit;
    st.inflight = w->inflight;
    st.slices_done = w->slices_done;
    st.heartbeat_age_ms = millis_between(w->last_seen, now);
    out.push_back(std::move(st));
  }
  return out;
}

// Puts every slice still awaited from `w` back in its job's queue, with the next attempt.
// Leases are walked backwards and each pushed to the front, so the queue keeps slice order.
void Scheduler::requeue_leases(Worker& w) {
  for (auto lease = w.leases.rbegin(); lease != w.leases.rend(); ++lease) {
    auto it = by_serial_.find(lease->job_serial);
    if (it == by_serial_.end() || it->second->final()) continue;
    Job& job = *it->second;
    std::uint64_t requeued = 0;
    std::uint64_t hi = 0;  // exclusive end of the range being built, 0: none
    for (std::uint64_t s = lease->first + lease->count; s-- > lease->first;) {
      if (job.collector.requeue(s, lease->attempt)) {
        ++requeued;
        if (hi == 0) hi = s + 1;
        continue;
      }
      if (hi != 0) job.pending.push_front(s + 1, hi);
      hi = 0;
    }
    if (hi != 0) job.pending.push_front(lease->first, hi);
    job.retried += requeued;
    if (!job.pending.empty()) runnable_.emplace(job.serial, &job);
  }
  w.leases.clear();
  w.inflight = 0;
}

bool Scheduler::release_lease(Worker& w, std::uint64_t job_serial, std::uint64_t slice,
                              std::uint32_t attempt) {
  for (auto it = w.leases.begin(); it != w.leases.end(); ++it) {
    if (it->job_serial != job_serial || it->attempt != attempt || slice < it->first ||
        slice - it->first >= it->count) {
      continue;
    }
    if (it->outstanding > 0) --it->outstanding;
    if (w.inflight > 0) --w.inflight;
    if (it->outstanding == 0) w.leases.erase(it);
    return true;
  }
  return false;
}

// The outcome came from someone other than the slice's holder (a misrouted or replayed
// report): the holder's credit must still be freed.
void Scheduler::release_lease_anywhere(std::uint64_t job_serial, std::uint64_t slice,
                                       std::uint32_t attempt) {
  for (auto& w : workers_) {
    if (release_lease(*w, job_serial, slice, attempt)) return;
  }
}

void Scheduler::drop_leases_of(const Job& job) {
  for (auto& w : workers_) {
    auto& leases = w->leases;
    for (auto it = leases.begin(); it != leases.end();) {
      if (it->job_serial == job.serial) {
        w->inflight -= std::min<std::uint64_t>(w->inflight, it->outstanding);
        it = leases.erase(it);
      } else {
        ++it;
      }
    }
  }
}

// ---- 4. results ----

ResultsTally Scheduler::results(msg::Results& m, TimePoint now) {
  ResultsTally tally;
  if (m.epoch != options_.epoch) {
    ++counters_.stale_epoch;
    tally.stale_epoch = true;
    return tally;
  }
  Worker* w = find_worker(m.worker_id);
  if (w != nullptr) w->last_seen = now;
  auto it = jobs_.find(m.job_id);
  if (it == jobs_.end()) {
    counters_.orphan_outcomes += m.items.size();
    tally.discarded = m.items.size();
    return tally;
  }
  Job& job = *it->second;
  bool progressed = false;
  for (SliceOutcome& o : m.items) {
    if (job.final()) {
      job.collector.count_discarded(1);
      ++tally.discarded;
      continue;
    }
    if (job.collector.is_leased(o.slice, o.attempt)) {
      if (w == nullptr || !release_lease(*w, job.serial, o.slice, o.attempt)) {
        release_lease_anywhere(job.serial, o.slice, o.attempt);
      }
    }
    Offer r = job.collector.offer(o);
    switch (r.verdict) {
      case Offer::Verdict::kAccepted:
        ++tally.accepted;
        progressed = true;
        if (w != nullptr) ++w->slices_done;
        break;
      case Offer::Verdict::kDiscarded:
        ++tally.discarded;
        break;
      case Offer::Verdict::kFailed: {
        const SliceGeometry& g = job.collector.geometry();
        const std::uint64_t a = g.slice_first(o.slice);
        fail_job(job, r.code,
                 "job " + job.spec.job_id + ": slice " + std::to_string(o.slice) + " (elements [" +
                     std::to_string(a) + ", " + std::to_string(a + g.slice_count(o.slice)) +
                     ")) failed in kernel '" + job.spec.kernel + "' on worker " + m.worker_id +
                     ": " + r.problem,
                 now);
        break;
      }
    }
  }
  if (!job.final() && job.collector.complete()) {
    complete_job(job, now);
  } else if (progressed && !job.final()) {
    changes_.progressed.push_back(job.spec.job_id);
  }
  return tally;
}

// ---- 5. dispatch ----

bool Scheduler::supports(const Worker& w, const Job& job) const {
  return w.kernels.empty() ||
         std::find(w.kernels.begin(), w.kernels.end(), job.spec.kernel) != w.kernels.end();
}

Job* Scheduler::next_job_for(const Worker& w) {
  for (const auto& [serial, job] : runnable_) {
    if (supports(w, *job)) return job;
  }
  return nullptr;
}

void Scheduler::dispatch(std::vector<Dispatch>& out) {
  out.clear();
  if (workers_.empty() || runnable_.empty()) return;
  const std::size_t n_workers = workers_.size();
  std::vector<SliceRun> fresh;
  // Rounds: each worker takes one share per round, so a short tail spreads over the workers
  // instead of filling the first one's credit.
  for (bool progress = true; progress && !runnable_.empty();) {
    progress = false;
    for (std::size_t k = 0; k < n_workers && !runnable_.empty(); ++k) {
      Worker& w = *workers_[(rotate_ + k) % n_workers];
      if (w.inflight >= w.credit) continue;
      Job* job = next_job_for(w);
      if (job == nullptr) continue;
      const std::uint64_t free = w.credit - w.inflight;
      const std::uint64_t share = (job->pending.size() + 2 * n_workers - 1) / (2 * n_workers);
      const std::uint64_t target = std::clamp<std::uint64_t>(share, 1, free);

      fresh.clear();
      const std::uint64_t taken = job->pending.take(target, job->collector, fresh);
      if (job->pending.empty()) runnable_.erase(job->serial);
      if (taken == 0) continue;
      progress = true;
      if (job->state == JobState::kQueued) job->state = JobState::kRunning;
      w.inflight += taken;

      auto d = std::find_if(out.begin(), out.end(),
                            [&](const Dispatch& x) { return x.job == job && x.worker_id == w.id; });
      if (d == out.end()) {
        out.push_back(Dispatch{w.id, job, {}});
        d = out.end() - 1;
      }
      for (const SliceRun& run : fresh) {
        if (!d->runs.empty() && d->runs.back().attempt == run.attempt &&
            d->runs.back().first_slice + d->runs.back().count == run.first_slice) {
          d->runs.back().count += run.count;
        } else {
          d->runs.push_back(run);
        }
        Lease* last = w.leases.empty() ? nullptr : &w.leases.back();
        if (last != nullptr && last->job_serial == job->serial && last->attempt == run.attempt &&
            last->first + last->count == run.first_slice) {
          last->count += run.count;
          last->outstanding += run.count;
        } else {
          w.leases.push_back(
              Lease{job->serial, run.first_slice, run.count, run.attempt, run.count});
        }
      }
    }
  }
  rotate_ = (rotate_ + 1) % n_workers;
}

void Scheduler::take_changes(Changes& out) {
  out.finished.clear();
  out.progressed.clear();
  std::swap(out, changes_);
}

// ---- 6. finishing jobs ----

void Scheduler::complete_job(Job& job, TimePoint now) {
  auto merged = job.collector.merged();
  if (!merged.ok()) {
    fail_job(
        job, ErrorCode::kInternal,
        "job " + job.spec.job_id + ": its partials cannot be merged: " + merged.error().message,
        now);
    return;
  }
  job.result =
      finalize_result(*job.kernel, std::move(merged).value(), job.spec.params, job.spec.count);
  finalize_job(job, JobState::kDone, now);
}

void Scheduler::fail_job(Job& job, ErrorCode code, std::string error, TimePoint now) {
  job.error_code = code;
  job.error = std::move(error);
  finalize_job(job, JobState::kFailed, now);
}

void Scheduler::finalize_job(Job& job, JobState state, TimePoint now) {
  job.state = state;
  job.finished = now;
  job.pending.clear();
  runnable_.erase(job.serial);
  drop_leases_of(job);
  job.collector.release_book();
  changes_.finished.push_back(job.spec.job_id);
  finished_order_.push_back(job.spec.job_id);
  while (finished_order_.size() > options_.max_finished_jobs) {
    auto it = jobs_.find(finished_order_.front());
    finished_order_.pop_front();
    if (it == jobs_.end()) continue;
    by_serial_.erase(it->second->serial);
    jobs_.erase(it);
  }
}

}  // namespace zwq::broker
