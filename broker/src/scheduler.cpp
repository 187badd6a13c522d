// Parts: 1. set-up and job ids  2. submit, cancel, status, restore  3. workers and leases
//        4. lost workers, stalls and poison slices  5. results  6. dispatch  7. finishing jobs
#include "scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string_view>
#include <utility>

#include "zwq/spec_packer.hpp"

namespace zwq::broker {

namespace {

// The longest encoded JobSpec a job may have: its Tasks adds the envelope, epoch, ref and runs
// (a run takes at most 19 bytes, and a worker holds at most its credit's worth), all within
// proto::kMaxFrameBytes.
constexpr std::size_t kMaxSpecBytes = proto::kMaxFrameBytes - (std::size_t{1} << 20);

// Where a submit under a known id asks for other work than the job of that id: "" for a retry
// (the same work), else the first field that differs. The slice size is left out (a retry may
// leave it to the broker's default; it changes how the work is cut, not what it computes), and
// so is a dataset's length (what the client's probe found: a file may grow between tries).
std::string other_work(const JobSpec& known, const JobSpec& asked) {
  const auto same_file = [](const DatasetRef& a, const DatasetRef& b) {
    return a.uri == b.uri && a.dtype == b.dtype && a.byte_offset == b.byte_offset &&
           a.host == b.host && a.memory == b.memory;
  };
  if (known.kernel != asked.kernel) return "kernel '" + asked.kernel + "'";
  if (!same_file(known.input, asked.input)) return "input '" + asked.input.uri + "'";
  if (!same_file(known.input2, asked.input2)) return "input2 '" + asked.input2.uri + "'";
  if (!same_file(known.output, asked.output)) return "output '" + asked.output.uri + "'";
  if (known.first != asked.first || known.count != asked.count) {
    return "range [" + std::to_string(asked.first) + ", " +
           std::to_string(asked.first + asked.count) + ")";
  }
  if (known.params != asked.params) return "parameters";
  if (known.param_sets != asked.param_sets) return "parameter sets";
  return {};
}

Error id_taken(const JobSpec& known, const std::string& differs) {
  std::string what = "kernel '" + known.kernel + "'";
  if (known.input.present()) what += " over '" + known.input.uri + "'";
  what +=
      ", [" + std::to_string(known.first) + ", " + std::to_string(known.first + known.count) + ")";
  return make_error(ErrorCode::kInvalidArgument,
                    "job id '" + known.job_id + "' is taken by another job (" + what +
                        "; this submit's " + differs +
                        " differs): an id is reused only to retry the same submit; choose a new "
                        "one or leave it out");
}

}  // namespace

// ---- 1. set-up and job ids ----

Scheduler::Scheduler(SchedulerOptions options, const KernelRegistry& kernels)
    : options_(std::move(options)), kernels_(kernels) {
  // The job being finished is never forgotten while it is still being worked on.
  options_.max_finished_jobs = std::max<std::size_t>(options_.max_finished_jobs, 1);
  if (options_.limits.default_slice_size == 0) options_.limits.default_slice_size = 1;
  options_.pipeline_depth = std::max<std::uint32_t>(options_.pipeline_depth, 1);
  options_.first_batch = std::max<std::uint32_t>(options_.first_batch, 1);
  options_.batch_target_us = std::max<std::uint32_t>(options_.batch_target_us, 1);
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
  using Jobs = decltype(jobs_);
  // The new job's place in the table, given up unless the job is accepted, whatever ends this
  // call: a refusal, or an exception (bad_alloc sizing a large job's book).
  struct Place {
    Jobs& jobs;
    Jobs::iterator it;
    bool keep = false;
    ~Place() {
      if (!keep && it != jobs.end()) jobs.erase(it);
    }
  } place{jobs_, jobs_.end()};
  if (!spec.job_id.empty()) {
    // One lookup for both a known id and the new job's place.
    auto [slot, fresh] = jobs_.try_emplace(spec.job_id);
    if (!fresh) {
      const Job& old = *slot->second;
      if (const std::string differs = other_work(old.spec, spec); !differs.empty()) {
        return id_taken(old.spec, differs);
      }
      return msg::SubmitRep{old.spec.job_id, old.collector.total(), old.spec.slice_size, true};
    }
    place.it = slot;
  }
  auto kernel = validate_job(spec, catalog_, options_.limits);
  if (!kernel.ok()) return kernel.error();
  if (Status s = check_host_has_workers(spec, kernel.value()); !s.ok()) return s.error();
  if (spec.job_id.empty()) {
    // Drawn once the job is accepted, so that a refusal names no id and uses none up.
    spec.job_id = new_job_id();
    place.it = jobs_.try_emplace(spec.job_id).first;
  }
  auto job = make_job(std::move(spec), kernel.value(), now);
  if (job->spec_bytes.size() > kMaxSpecBytes) {
    // It fitted the SubmitReq but would not fit a Tasks: no worker could take it (a worker
    // refusing the Tasks that carries a job, then named by ref, would register again for ever).
    return make_error(ErrorCode::kInvalidArgument,
                      "job spec of " + std::to_string(job->spec_bytes.size()) +
                          " bytes encoded: at most " + std::to_string(kMaxSpecBytes) +
                          " fit a Tasks message (keep parameter sets smaller)");
  }
  if (log_ != nullptr) {
    if (Status st = log_->submitted(*job); !st.ok()) return st.error();
  }

  Job& j = *job;
  place.it->second = std::move(job);
  place.keep = true;
  msg::SubmitRep rep{j.spec.job_id, j.collector.total(), j.spec.slice_size, false};
  if (j.collector.total() == 0) {
    complete_job(j, now);
  } else {
    runnable_.emplace(j.serial, &j);
  }
  return rep;
}

Status Scheduler::check_host_has_workers(const JobSpec& spec, const KernelInfo* kernel) const {
  const DatasetRef* d = hosted_dataset(spec);
  if (d == nullptr || workers_.empty()) return Status::Ok();  // none yet: it waits for them
  for (const auto& w : workers_) {
    if (readable_by(spec, w->host, w->memory) && catalog_.serves(w->id, kernel)) {
      return Status::Ok();
    }
  }
  return make_error(ErrorCode::kDatasetMissing,
                    "dataset '" + d->uri + "' is on " + memory_place(*d) +
                        ", where no worker with kernel '" + spec.kernel +
                        "' runs: start workers there, or put the dataset on a filesystem every "
                        "worker host mounts and name it by its path");
}

std::unique_ptr<Job> Scheduler::make_job(JobSpec spec, const KernelInfo* kernel, TimePoint now) {
  auto job = std::make_unique<Job>();
  job->serial = next_serial_++;
  job->ref = options_.epoch + job->serial;  // wraps; 0 is skipped
  if (job->ref == 0) job->ref = options_.epoch + next_serial_++;
  spec.slice_size = effective_slice_size(spec, options_.limits);
  job->spec = std::move(spec);
  job->kernel = kernel;
  // A job that differs from the last one packed only in its id (a SubmitMany of one kernel over
  // many ranges or points) reuses that one's bytes after the id: packing a spec field by field
  // was a third of making a one-slice job. Such a job also has that one's shape: comparing it
  // with the recalled shapes again would only find that one (a shape is pushed out only by a
  // new one, which only a job of another spec makes).
  const bool like_last = spec_packer_.pack(job->spec, job->spec_bytes);
  job->shape = like_last ? last_shape_ : shape_for(job->spec);
  last_shape_ = job->shape;
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
  return job;
}

std::shared_ptr<JobShape> Scheduler::shape_for(const JobSpec& spec) {
  if (options_.recalled_shapes == 0) return nullptr;
  for (auto it = shapes_.rbegin(); it != shapes_.rend(); ++it) {
    if ((*it)->matches(spec)) return *it;
  }
  auto shape = std::make_shared<JobShape>(JobShape{.kernel = spec.kernel,
                                                   .slice_size = spec.slice_size,
                                                   .params = spec.params,
                                                   .input = spec.input,
                                                   .input2 = spec.input2,
                                                   .output = spec.output});
  shapes_.push_back(shape);
  if (shapes_.size() > options_.recalled_shapes) shapes_.pop_front();
  return shape;
}

Status Scheduler::restore(RecoveredJob& r, TimePoint now) {
  const std::string id = r.spec.job_id;
  if (id.empty() || jobs_.count(id) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the journal names job '" + id + "' twice (or without an id)");
  }
  // A plugin's kernel is restored with the definition the job was accepted with, so that the job
  // waits for a worker that announces it again instead of being dropped.
  const KernelInfo* known = r.kernel.name.empty() ? nullptr : catalog_.remember(r.kernel);
  ValidationLimits limits = options_.limits;
  limits.param_names = false;  // (accepted by an earlier broker: see ValidationLimits)
  auto kernel = known != nullptr ? validate_job(r.spec, known, limits)
                                 : validate_job(r.spec, catalog_, limits);
  if (!kernel.ok()) return kernel.error();
  auto job = make_job(std::move(r.spec), kernel.value(), now);
  JobCollector& book = job->collector;
  for (std::size_t i = 0; i < r.covered.size(); ++i) {
    std::string bytes = i < r.gathered.size() ? std::move(r.gathered[i]) : std::string();
    book.restore(r.covered[i].first, r.covered[i].second, std::move(bytes));
  }
  if (r.merged && !combiner_is_order_sensitive(book.combiner()) &&
      r.merged->combiner == book.combiner()) {
    book.restore_merged(std::move(*r.merged));
  }
  // Only the slices without a result run again: their ranges are found from the last one back,
  // each put in front of those after it.
  job->pending.clear();
  for (std::uint64_t e = book.total(); e > 0;) {
    if (book.state(e - 1) == SliceState::kCovered) {
      --e;
      continue;
    }
    std::uint64_t s = e;
    while (s > 0 && book.state(s - 1) != SliceState::kCovered) --s;
    job->pending.push_front(s, e);
    e = s;
  }

  Job& j = *job;
  jobs_.emplace(id, std::move(job));
  if (job_state_final(r.state)) {
    // Already journaled as final: no log call, the record is there.
    j.state = r.state;
    j.error_code = r.error_code;
    j.error = valid_utf8(r.error);  // (a journal of an older broker kept it as it came)
    if (r.result) j.result = std::move(*r.result);
    j.finished = now;
    j.pending.clear();
    j.collector.release_book();
    if (r.results_released) j.collector.restore_released(r.released_covered);
    remember_finished(j);
  } else if (book.complete()) {
    complete_job(j, now);
  } else {
    if (book.covered() > 0) j.state = JobState::kRunning;
    runnable_.emplace(j.serial, &j);
  }
  return Status::Ok();
}

void Scheduler::jobs_in_order(std::vector<const Job*>& out) const {
  out.clear();
  out.reserve(jobs_.size());
  for (const auto& kv : jobs_) out.push_back(kv.second.get());
  std::sort(out.begin(), out.end(),
            [](const Job* a, const Job* b) { return a->serial < b->serial; });
}

bool Scheduler::has_unfinished_jobs() const {
  return std::any_of(jobs_.begin(), jobs_.end(),
                     [](const auto& kv) { return !kv.second->final(); });
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
  return status(job, now);
}

// What decides which workers take a job, beside its kernel: where its datasets are.
std::string Scheduler::place_of(const Job& job) {
  std::string place;
  for (const DatasetRef* d : {&job.spec.input, &job.spec.input2, &job.spec.output}) {
    place += std::to_string(d->host.size()) + ':' + d->host + std::to_string(d->memory.size()) +
             ':' + d->memory;
  }
  return place;
}

Scheduler::JobsAhead Scheduler::jobs_ahead(std::uint64_t last) const {
  JobsAhead out;
  std::vector<std::uint64_t> served(workers_.size(), 0);  // older runnable jobs each one serves
  // The workers (not stalled) that take each (kernel, place): looked up once per pair.
  std::map<std::pair<const KernelInfo*, std::string>, std::vector<std::size_t>> takers_of;
  for (const auto& [serial, job] : runnable_) {
    if (serial > last) break;
    if (job->final() || job->pending.empty()) continue;  // (left in runnable_ until dispatch)
    auto [it, fresh] = takers_of.try_emplace({job->kernel, place_of(*job)});
    if (fresh) {
      for (std::size_t i = 0; i < workers_.size(); ++i) {
        if (!workers_[i]->stalled && supports(*workers_[i], *job)) it->second.push_back(i);
      }
    }
    if (it->second.empty()) continue;
    std::uint64_t fewest = served[it->second.front()];
    for (std::size_t i : it->second) fewest = std::min(fewest, served[i]++);
    out.emplace(serial, fewest);
  }
  return out;
}

JobStatus Scheduler::status(const Job& job, TimePoint now, WaitReasons* reasons,
                            const JobsAhead* ahead) const {
  JobStatus st = job.status(now);
  st.lease_ms = job.final() ? 0 : static_cast<std::uint64_t>(lease_for(job).count());
  // Only a job with nothing in flight can be waiting for a worker.
  if (job.final() || st.inflight != 0 || st.done >= st.total) return st;
  set_waiting(st, job, reasons);
  if (ahead != nullptr && st.waiting.empty()) {
    if (auto it = ahead->find(job.serial); it != ahead->end()) st.ahead = it->second;
  }
  return st;
}

JobStatus Scheduler::status_with_ahead(const Job& job, TimePoint now) const {
  const JobsAhead ahead = jobs_ahead(job.serial);
  return status(job, now, nullptr, &ahead);
}

void Scheduler::set_waiting(JobStatus& st, const Job& job, WaitReasons* reasons) const {
  if (reasons == nullptr) {
    st.waiting = waiting_reason(job, takers(job));
    return;
  }
  auto [it, fresh] = reasons->try_emplace({job.kernel, place_of(job)});
  if (fresh) it->second = takers(job);
  st.waiting = waiting_reason(job, it->second);
}

const Job* Scheduler::find_job(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

std::vector<JobStatus> Scheduler::all_status(TimePoint now) const {
  std::vector<const Job*> ordered;
  ordered.reserve(jobs_.size());
  for (const auto& [id, job] : jobs_) ordered.push_back(job.get());
  std::sort(ordered.begin(), ordered.end(),
            [](const Job* a, const Job* b) { return a->serial < b->serial; });
  std::vector<JobStatus> out;
  out.reserve(ordered.size());
  // Jobs that wait do so for the same few (kernel, host) pairs: each is looked up once.
  WaitReasons reasons;
  const JobsAhead ahead = jobs_ahead(std::numeric_limits<std::uint64_t>::max());
  for (const Job* job : ordered) {
    out.push_back(status(*job, now, &reasons, &ahead));
  }
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
  catalog_.withdraw(id);
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
    requeue_leases(*w, nullptr, now);  // it is back: nothing was lost with it
    w->stalled = false;
  } else {
    workers_.push_back(std::make_unique<Worker>());
    w = workers_.back().get();
    w->id = m.worker_id;
    worker_index_.emplace(w->id, w);
  }
  w->host = m.host;
  w->memory = m.memory;
  w->pid = m.pid;
  w->credit = m.credit;
  w->tasks_frames = m.tasks_frames;
  w->job_refs = m.job_refs;
  w->spec_ref = 0;  // a new registration holds no job yet
  w->kernels = m.kernels;
  catalog_.offer(w->id, m.kernels, m.kernel_specs);
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

bool Scheduler::bye(const std::string& worker_id, TimePoint now) {
  Worker* w = find_worker(worker_id);
  if (w == nullptr) {
    ++counters_.unknown_worker;
    return false;
  }
  requeue_leases(*w, nullptr, now);  // handed back in good order: no attempt was lost
  remove_worker(worker_id);
  return true;
}

bool Scheduler::lose_worker(const std::string& worker_id, TimePoint now) {
  Worker* w = find_worker(worker_id);
  if (w == nullptr) return false;
  ++counters_.workers_lost;
  lose(*w, "unreachable (its connection closed)", true, now);
  return true;
}

std::vector<std::string> Scheduler::expire(TimePoint now) {
  const auto limit = Millis(std::uint64_t{options_.heartbeat_ms} * options_.liveness);
  std::vector<std::string> dead;
  std::vector<std::string> stalled;
  for (const auto& w : workers_) {
    if (now - w->last_seen > limit) {
      dead.push_back(w->id);
    } else if (w->inflight > 0 && !w->stalled && now > w->lease_deadline) {
      stalled.push_back(w->id);
    }
  }
  for (const auto& id : dead) {
    Worker* w = find_worker(id);
    if (w == nullptr) continue;
    ++counters_.workers_expired;
    lose(*w, "no heartbeat for " + std::to_string(millis_between(w->last_seen, now)) + " ms", true,
         now);
  }
  for (const auto& id : stalled) {
    Worker* w = find_worker(id);
    if (w == nullptr || w->inflight == 0) continue;
    ++counters_.leases_expired;
    lose(*w,
         "lease expired: no result for " + std::to_string(w->lease_ms) + " ms while it held " +
             std::to_string(w->inflight) + " slices (hung or stopped)",
         false, now);
  }
  return dead;
}

void Scheduler::forgive(Millis gap) {
  for (auto& w : workers_) {
    w->last_seen += gap;
    w->lease_deadline += gap;
  }
}

std::vector<WorkerStatus> Scheduler::workers(TimePoint now) const {
  std::vector<WorkerStatus> out;
  out.reserve(workers_.size());
  for (const auto& w : workers_) {
    WorkerStatus st;
    st.worker_id = w->id;
    st.host = w->host;
    st.memory = w->memory;
    st.pid = w->pid;
    st.state = w->stalled ? "stalled" : w->inflight > 0 ? "busy" : "idle";
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
// With a `loss_cause` (the worker died or stalled) each slice counts a lost attempt, and a slice
// that reaches max_lost_attempts fails its job, naming the cause.
void Scheduler::requeue_leases(Worker& w, const std::string* loss_cause, TimePoint now) {
  std::vector<std::pair<Job*, std::uint64_t>> poisoned;
  for (auto lease = w.leases.rbegin(); lease != w.leases.rend(); ++lease) {
    Job& job = *lease->job;
    if (job.final()) continue;
    std::uint64_t requeued = 0;
    std::uint64_t hi = 0;  // exclusive end of the range being built, 0: none
    for (std::uint64_t s = lease->first + lease->count; s-- > lease->first;) {
      if (job.collector.requeue(s, lease->attempt)) {
        ++requeued;
        if (loss_cause != nullptr && job.collector.count_lost(s) >= options_.max_lost_attempts &&
            options_.max_lost_attempts != 0) {
          poisoned.emplace_back(&job, s);
        }
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
  for (const Lease& l : w.leases) --l.job->lease_records;
  w.leases.clear();
  w.inflight = 0;
  w.isolating = false;
  // The lowest poisoned slice of each job names the failure; the job's other leases go with it.
  std::sort(poisoned.begin(), poisoned.end(), [](const auto& a, const auto& b) {
    return a.first->serial != b.first->serial ? a.first->serial < b.first->serial
                                              : a.second < b.second;
  });
  for (const auto& [job, slice] : poisoned) {
    if (job->final()) continue;
    ++counters_.poison_slices;
    const SliceGeometry& g = job->collector.geometry();
    const std::uint64_t a = g.slice_first(slice);
    fail_job(*job, ErrorCode::kKernelFailed,
             "job " + job->spec.job_id + ": slice " + std::to_string(slice) + " (elements [" +
                 std::to_string(a) + ", " + std::to_string(a + g.slice_count(slice)) +
                 ")) of kernel '" + job->spec.kernel + "' was lost with its worker " +
                 std::to_string(job->collector.lost(slice)) +
                 " times (a poison slice: the kernel crashes or hangs on it); last time " +
                 *loss_cause,
             now);
  }
}

// ---- 4. lost workers, stalls and poison slices ----

// `w` died (remove) or stalled (kept, but given nothing until it reports again): its slices go
// back to the queue at once, each counting a lost attempt.
void Scheduler::lose(Worker& w, std::string cause, bool remove, TimePoint now) {
  WorkerLoss loss{w.id, cause, w.inflight, remove};
  const std::string described =
      "worker " + w.id + " (host " + w.host + ", pid " + std::to_string(w.pid) + ") lost: " + cause;
  requeue_leases(w, &described, now);
  if (remove) {
    remove_worker(loss.worker_id);  // w is gone after this
  } else {
    w.stalled = true;
  }
  changes_.losses.push_back(std::move(loss));
}

// The worker showed progress (or got work while idle): its head slice has a lease from now.
void Scheduler::renew_lease(Worker& w, TimePoint now) {
  if (w.inflight == 0 || w.leases.empty()) return;
  const Millis lease = lease_for(*w.leases.front().job);
  w.lease_deadline = now + lease;
  w.lease_ms = static_cast<std::uint64_t>(lease.count());
}

Millis Scheduler::lease_for(const Job& job) const {
  const std::uint64_t floor = options_.lease_floor_ms;
  if (job.slowest_us == 0 && job.collector.covered() == 0) {
    return Millis(std::max<std::uint64_t>(options_.lease_first_ms, floor));
  }
  const std::uint64_t scaled = job.slowest_us * options_.lease_factor / 1000;
  return Millis(std::max(floor, scaled));
}

bool Scheduler::release_lease(Worker& w, const Job* job, std::uint64_t slice,
                              std::uint32_t attempt) {
  for (auto it = w.leases.begin(); it != w.leases.end(); ++it) {
    if (it->job != job || it->attempt != attempt || slice < it->first ||
        slice - it->first >= it->count) {
      continue;
    }
    if (it->outstanding > 0) --it->outstanding;
    if (w.inflight > 0) --w.inflight;
    if (it->outstanding == 0) {
      --it->job->lease_records;
      w.leases.erase(it);
    }
    if (w.inflight == 0) w.isolating = false;
    return true;
  }
  return false;
}

// The outcome came from someone other than the slice's holder (a misrouted or replayed
// report): the holder's credit must still be freed.
void Scheduler::release_lease_anywhere(const Job* job, std::uint64_t slice, std::uint32_t attempt) {
  for (auto& w : workers_) {
    if (release_lease(*w, job, slice, attempt)) return;
  }
}

void Scheduler::drop_leases_of(Job& job) {
  if (job.lease_records == 0) return;  // the usual end: every run came back
  for (auto& w : workers_) {
    auto& leases = w->leases;
    for (auto it = leases.begin(); it != leases.end();) {
      if (it->job == &job) {
        w->inflight -= std::min<std::uint64_t>(w->inflight, it->outstanding);
        --job.lease_records;
        it = leases.erase(it);
      } else {
        ++it;
      }
    }
    if (w->inflight == 0) w->isolating = false;
  }
}

// ---- 5. results ----

ResultsTally Scheduler::results(msg::Results& m, TimePoint now) {
  ResultsTally tally;
  if (m.epoch != options_.epoch) {
    ++counters_.stale_epoch;
    tally.stale_epoch = true;
    return tally;
  }
  Worker* w = find_worker(m.worker_id);
  if (w != nullptr) {
    // Any Results is progress through its queue: a stalled worker is back, and its lease renews.
    w->last_seen = now;
    w->progress_mark = now;
    w->stalled = false;
    renew_lease(*w, now);
  }
  auto it = jobs_.find(m.job_id);
  if (it == jobs_.end()) {
    counters_.orphan_outcomes += m.items.size();
    tally.discarded = m.items.size();
    return tally;
  }
  Job& job = *it->second;
  bool progressed = false;
  std::uint64_t released = 0;  // slices of w's leases this message accounts for
  for (SliceOutcome& o : m.items) {
    if (job.final()) {
      job.collector.count_discarded(1);
      ++tally.discarded;
      continue;
    }
    if (job.collector.is_leased(o.slice, o.attempt)) {
      if (w != nullptr && release_lease(*w, &job, o.slice, o.attempt)) {
        ++released;
      } else {
        release_lease_anywhere(&job, o.slice, o.attempt);
      }
    }
    Offer r = job.collector.offer(o);
    switch (r.verdict) {
      case Offer::Verdict::kAccepted:
        ++tally.accepted;
        progressed = true;
        if (w != nullptr) ++w->slices_done;
        if (log_ != nullptr) log_->covered(job, o.slice);
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
  if (tally.accepted > 0) job.slowest_us = std::max(job.slowest_us, m.slowest_us);
  if (w != nullptr) {
    renew_lease(*w, now);
    observe_pace(*w, job, released, m.slowest_us, now);
  }
  if (!job.final() && job.collector.complete()) {
    complete_job(job, now);
  } else if (progressed && !job.final()) {
    changes_.progressed.push_back(job.spec.job_id);
  }
  return tally;
}

// How fast `w` computes slices of `job`, learnt from a report of `slices` of its slices. Two
// upper bounds of the time per slice, of which the smaller is kept: the slowest slice of the
// message (as the worker timed it), and the time since the window began (it has been busy all
// along) over the slices reported in it. The first alone errs high when one slice was held up
// (a preempted worker); the second alone while the worker idles between too small batches,
// which is what this estimate is there to end. Moving averages, per worker and per job.
void Scheduler::observe_pace(Worker& w, Job& job, std::uint64_t slices, std::uint64_t slowest_us,
                             TimePoint now) {
  // A window shorter than this says more about the broker's loop than about the worker.
  constexpr double kWindowUs = 1000;
  // Weight of a new sample: a few reports make a pace, one odd report does not.
  constexpr double kWeight = 0.25;
  if (slices == 0) return;
  if (w.pace_job != job.serial) {
    // A job of the shape of its last one starts from the worker's pace on that one: its speed
    // relative to the others carries over, where the shape's pace blends all of theirs.
    if (job.shape == nullptr || w.pace_shape != job.shape) w.pace_us = 0;
    w.pace_job = job.serial;
    w.pace_shape = job.shape;
    w.pace_slices = 0;  // the window goes on: the worker was busy, if with another job
  }
  w.pace_slices += slices;
  double sample = static_cast<double>(slowest_us);  // 0: not said
  const double window_us = std::chrono::duration<double, std::micro>(now - w.pace_mark).count();
  // While nothing is known of the job's pace, a worker holds one batch of it (dispatch()) and
  // idles between reports, so its window restarts with every batch and may never reach
  // kWindowUs: a short window then counts too, and its estimate (which includes the round
  // trip, so errs high) is enough to let batches grow until longer windows correct it.
  const bool unknown = w.pace_us == 0 && job.pace_us == 0;
  if (window_us >= kWindowUs || (unknown && window_us > 0)) {
    const double arrival = window_us / static_cast<double>(w.pace_slices);
    sample = sample > 0 ? std::min(sample, arrival) : arrival;
    w.pace_mark = now;
    w.pace_slices = 0;
  }
  if (sample <= 0) return;
  auto blend = [&](double& avg) { avg = avg == 0 ? sample : avg + kWeight * (sample - avg); };
  blend(w.pace_us);
  blend(job.pace_us);
  if (job.shape) blend(job.shape->pace_us);
}

// ---- 6. dispatch ----

namespace {

std::uint64_t slices_of(const std::vector<SliceRun>& runs) {
  std::uint64_t n = 0;
  for (const SliceRun& r : runs) n += r.count;
  return n;
}

}  // namespace

bool Scheduler::supports(const Worker& w, const Job& job) const {
  return catalog_.serves(w.id, job.kernel) && readable_by(job.spec, w.host, w.memory);
}

Scheduler::Takers Scheduler::takers(const Job& job) const {
  if (workers_.empty()) return Takers::kNoWorker;
  bool stalled = false;
  for (const auto& w : workers_) {
    if (!supports(*w, job)) continue;
    if (!w->stalled) return Takers::kSome;
    stalled = true;
  }
  return stalled ? Takers::kStalled : Takers::kNoneServes;
}

std::string Scheduler::waiting_reason(const Job& job, Takers takers) {
  const std::string& kernel = job.spec.kernel;
  const DatasetRef* d = hosted_dataset(job.spec);
  const std::string where = d == nullptr ? "" : " that can read " + memory_place(*d);
  switch (takers) {
    case Takers::kSome:
      return {};
    case Takers::kNoWorker:
      return "no worker is registered";
    case Takers::kStalled:
      return "its workers with kernel '" + kernel + "'" + where +
             " are stalled: their leases ran out, and they get no slices until they report again";
    case Takers::kNoneServes:
      break;
  }
  if (d != nullptr) {
    return "no worker with kernel '" + kernel + "' can read '" + valid_utf8(d->uri) + "' on " +
           valid_utf8(memory_place(*d));
  }
  return "no registered worker has kernel '" + kernel + "'";
}

// The oldest runnable job `w` serves. When that job's next slice is a suspect, only an idle
// worker gets it (alone); a busy one gets nothing, so that it drains and can take it next.
Job* Scheduler::next_job_for(const Worker& w, bool& alone) {
  alone = false;
  for (auto it = runnable_.begin(); it != runnable_.end();) {
    Job* job = it->second;
    if (!supports(w, *job)) {
      ++it;
      continue;
    }
    const auto front = job->pending.front(job->collector);
    if (!front) {
      it = runnable_.erase(it);
      continue;
    }
    if (job->collector.suspect(*front)) {
      if (w.inflight != 0) return nullptr;
      alone = true;
    }
    return job;
  }
  return nullptr;
}

void Scheduler::dispatch(std::vector<Dispatch>& out, TimePoint now) {
  out.clear();
  ++dispatch_pass_;  // the speeds worked out by the last pass are stale
  dispatch_now_ = now;
  if (workers_.empty() || runnable_.empty()) return;
  const std::size_t n_workers = workers_.size();
  // Rounds: each worker takes one batch per round, so a short tail spreads over the workers
  // instead of filling the first one's credit, and a worker's room is filled with several
  // batches (pipelining: the next one waits at the worker while it computes this one).
  for (bool progress = true; progress && !runnable_.empty();) {
    progress = false;
    for (std::size_t k = 0; k < n_workers && !runnable_.empty(); ++k) {
      Worker& w = *workers_[(rotate_ + k) % n_workers];
      if (w.stalled || w.isolating || w.inflight >= w.credit) continue;
      bool alone = false;
      Job* job = next_job_for(w, alone);
      if (job == nullptr) continue;
      const std::uint64_t batch = batch_for(w, *job);
      const std::uint64_t room =
          std::min<std::uint64_t>(w.credit, std::uint64_t{options_.pipeline_depth} * batch);
      if (w.inflight >= room) continue;
      const std::uint64_t free = room - w.inflight;
      // Room for less than half a batch waits for more (unless that is all the job has left),
      // so that a report of a few slices does not become a Tasks message of a few, and then a
      // Results of a few, cycle after cycle. When the credit is one batch (tiny slices) a
      // sixteenth will do: refilled in such steps, the worker's queue never runs dry.
      const std::uint64_t per_message =
          options_.max_batch != 0 ? std::min<std::uint64_t>(batch, options_.max_batch) : batch;
      const std::uint64_t least =
          std::min(per_message, batch < w.credit ? (batch + 1) / 2 : (batch + 15) / 16);
      if (!alone && free < least && free < job->pending.size()) continue;
      std::uint64_t target = alone ? 1 : std::min({batch, free, share_for(w, *job, speeds(*job))});
      if (!alone && pace_of(w, *job) <= 0) {
        // Nothing is known of the job's time per slice yet (nor of its shape's): one batch of it
        // per worker until the first report says, however deep the pipeline. Slices may be long,
        // and a worker that took several batches of a short job would hold most of it: its tail
        // would then follow that worker's speed rather than be shared by speed.
        const std::uint64_t held = held_of(w, job);
        if (held >= options_.first_batch) continue;
        target = std::min<std::uint64_t>(target, options_.first_batch - held);
      }
      const bool was_idle = w.inflight == 0;

      fresh_.clear();
      const std::uint64_t taken = job->pending.take(target, job->collector, fresh_);
      if (job->pending.empty()) runnable_.erase(job->serial);
      if (taken == 0) continue;
      progress = true;
      if (job->state == JobState::kQueued) job->state = JobState::kRunning;
      w.inflight += taken;
      if (alone) w.isolating = true;

      // One batch, one Tasks message (or several of at most max_batch slices); a share of this
      // round joins the worker's message of the round before when it fits in it whole (they are
      // computed back to back anyway).
      Dispatch* d = nullptr;
      for (auto it = out.rbegin(); it != out.rend(); ++it) {
        if (it->worker_id != w.id) continue;
        if (it->job == job && slices_of(it->runs) + taken <= per_message) d = &*it;
        break;
      }
      std::uint64_t in_d = d == nullptr ? 0 : slices_of(d->runs);
      for (const SliceRun& run : fresh_) {
        for (SliceRun rest = run; rest.count > 0;) {
          if (d == nullptr || in_d == per_message) {
            out.push_back(Dispatch{w.id, job, {}, w.tasks_frames});
            d = &out.back();
            if (w.job_refs) {
              d->ref = job->ref;
              d->with_spec = w.spec_ref != job->ref;
              w.spec_ref = job->ref;
            }
            in_d = 0;
          }
          const auto piece =
              static_cast<std::uint32_t>(std::min<std::uint64_t>(rest.count, per_message - in_d));
          if (!d->runs.empty() && d->runs.back().attempt == rest.attempt &&
              d->runs.back().first_slice + d->runs.back().count == rest.first_slice) {
            d->runs.back().count += piece;
          } else {
            d->runs.push_back(SliceRun{rest.first_slice, piece, rest.attempt});
          }
          in_d += piece;
          rest.first_slice += piece;
          rest.count -= piece;
        }
        Lease* last = w.leases.empty() ? nullptr : &w.leases.back();
        if (last != nullptr && last->job == job && last->attempt == run.attempt &&
            last->first + last->count == run.first_slice) {
          last->count += run.count;
          last->outstanding += run.count;
        } else {
          w.leases.push_back(Lease{job, run.first_slice, run.count, run.attempt, run.count});
          ++job->lease_records;
        }
      }
      if (was_idle) {
        renew_lease(w, now);
        w.progress_mark = now;
        w.pace_mark = now;  // busy from now: the window its next reports are timed over
        w.pace_slices = 0;
      }
    }
  }
  rotate_ = (rotate_ + 1) % n_workers;
}

// Slices of `job` that `w` holds now (its leases are few runs).
std::uint64_t Scheduler::held_of(const Worker& w, const Job* job) {
  std::uint64_t n = 0;
  for (const Lease& l : w.leases) {
    if (l.job == job) n += l.outstanding;
  }
  return n;
}

// The expected µs per slice of `w` on `job`: its own pace on it (or on the last job of its shape
// it reported on), else the job's, else that of the job's shape (0: unknown).
double Scheduler::pace_of(const Worker& w, const Job& job) const {
  if (w.pace_us > 0 && (w.pace_job == job.serial || (job.shape && w.pace_shape == job.shape))) {
    return w.pace_us;
  }
  return job.known_pace_us();
}

double Scheduler::slice_us(const std::string& worker_id, const Job& job) const {
  auto it = worker_index_.find(worker_id);
  return it == worker_index_.end() ? job.pace_us : pace_of(*it->second, job);
}

double Scheduler::expected_us(const Job& job) const {
  const double us = job.known_pace_us();
  const double workers = static_cast<double>(std::max<std::size_t>(workers_.size(), 1));
  return us * static_cast<double>(job.pending.size()) / workers;
}

// The speeds (slices per µs) of the workers that may take `job`: their sum, and the mean of the
// known ones, which a worker of unknown pace counts as (1 each when none is known). Worked out
// once per dispatch pass and kept in the job: a pass over a thousand one-slice jobs asks for each
// one's speeds.
const WorkerSpeeds& Scheduler::speeds(Job& job) {
  if (job.speeds_pass == dispatch_pass_) return job.speeds;
  double known = 0;
  std::size_t n_known = 0, n_unknown = 0;
  std::uint64_t credit = 0;
  for (const auto& w : workers_) {
    if (w->stalled || !supports(*w, job)) continue;
    const double us = pace_of(*w, job);
    if (us > 0) {
      known += 1 / us;
      ++n_known;
    } else {
      ++n_unknown;
    }
    credit += w->credit;
  }
  WorkerSpeeds& s = job.speeds;
  s = WorkerSpeeds{static_cast<double>(n_unknown), 1};
  // What the workers hold counts only near the job's end (see share_for): walking their leases
  // for every job of a stream of small ones, or every pass over a job of a million slices, cost
  // the broker a few per cent of its time.
  s.near_end = near_end(job, credit);
  if (s.near_end) {
    for (const auto& w : workers_) {
      if (w->stalled || !supports(*w, job)) continue;
      s.computed += computed_since_mark(*w, job, held_of(*w, &job));
    }
  }
  if (n_known > 0) {
    s.mean = known / static_cast<double>(n_known);
    s.sum = known + static_cast<double>(n_unknown) * s.mean;
  }
  job.speeds_pass = dispatch_pass_;
  return s;
}

// Slices of `job` for one batch to `w` by its pace and credit (see dispatch()).
std::uint64_t Scheduler::batch_for(const Worker& w, const Job& job) const {
  const std::uint64_t depth = options_.pipeline_depth;
  std::uint64_t per_batch = std::max<std::uint64_t>((w.credit + depth - 1) / depth, 1);
  const double us = pace_of(w, job);
  if (us > 0 && static_cast<double>(per_batch) * us < options_.min_batch_us) per_batch = w.credit;
  std::uint64_t batch = std::min<std::uint64_t>(std::max(options_.first_batch, 1u), per_batch);
  if (us > 0) {
    const double fits = options_.batch_target_us / us;
    batch = fits >= static_cast<double>(per_batch) ? per_batch : std::max<std::uint64_t>(1, fits);
  }
  return batch;
}

// Guided self-scheduling weighted by speed: at most half of this worker's part of what is left
// of `job`, less what it holds of the job already, so that the last slices spread over the
// workers by how fast each one is. What is left counts the slices the workers hold (leased, not
// yet covered) as well as the pending ones: with pipelined batches a worker may hold several
// when the pending slices run out, and counting only those left one worker of two idle for the
// last 3.5 ms of a simulated 1 GiB sum while the other worked through its queue
// (scheduler_balance_test.cpp; zwq-bench's time split showed the same). 0 for a worker that holds
// its part already: the rest goes to the others.
std::uint64_t Scheduler::share_for(const Worker& w, const Job& job,
                                   const WorkerSpeeds& speeds) const {
  const std::uint64_t pending = job.pending.size();
  if (speeds.sum <= 0 || pending <= 1) return 1;
  const double us = pace_of(w, job);
  const double mine = us > 0 ? 1 / us : speeds.mean;
  if (!speeds.near_end) {
    // More pending than all the workers' credit could hold: what they hold changes the share
    // little, and the pending slices alone decide it.
    return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(
                                          static_cast<double>(pending) * mine / (2 * speeds.sum))));
  }
  // Left: every slice not covered (pending, or held by a worker), less what the workers have
  // likely computed of theirs since their last Results or since they got work while idle (a
  // report comes once per batch or so: without this, the worker that reported last looks the
  // least busy by up to a batch).
  const double open = static_cast<double>(job.collector.total() - job.collector.covered());
  const std::uint64_t held = held_of(w, &job);
  const double mine_left = static_cast<double>(held) - computed_since_mark(w, job, held);
  const double part = std::max(0.0, open - speeds.computed) * mine / speeds.sum - mine_left;
  if (part <= 0) return held == 0 ? 1 : 0;
  return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(part / 2)));
}

bool Scheduler::near_end(const Job& job, std::uint64_t credit) {
  return job.pending.size() > 1 && job.pending.size() <= credit;
}

double Scheduler::computed_since_mark(const Worker& w, const Job& job, std::uint64_t held) const {
  if (held == 0) return 0;
  const double us = pace_of(w, job);
  if (us <= 0 || dispatch_now_ <= w.progress_mark) return 0;
  const double since =
      std::chrono::duration<double, std::micro>(dispatch_now_ - w.progress_mark).count();
  return std::min(static_cast<double>(held), since / us);
}

void Scheduler::take_changes(Changes& out) {
  out.finished.clear();
  out.progressed.clear();
  out.losses.clear();
  std::swap(out, changes_);
}

// ---- 7. finishing jobs ----

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
  job.error = valid_utf8(error);  // it may quote a worker's or a client's bytes (a path)
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
  if (log_ != nullptr) log_->finished(job);
  remember_finished(job);
}

void Scheduler::remember_finished(Job& job) {
  finished_order_.push_back(&job);
  if (job.collector.combiner() != Combiner::kGather && job.collector.total() > 0 &&
      !job.collector.results_released()) {
    results_held_.push_back(&job);
    results_held_slices_ += job.collector.total();
    // (The journal has written every buffered result by now: Journal::finished flushes them.)
    while (results_held_slices_ > options_.max_finished_slices && results_held_.size() > 1) {
      Job* old = results_held_.front();
      results_held_.pop_front();
      results_held_slices_ -= old->collector.total();
      old->collector.release_results();
    }
  }
  if (finished_order_.size() <= options_.max_finished_jobs) return;
  do {
    // Found by the job's own id, then erased by position: the id is not used once it is gone.
    const Job* old = finished_order_.front();
    if (!results_held_.empty() && results_held_.front() == old) {
      results_held_slices_ -= old->collector.total();
      results_held_.pop_front();
    }
    const auto it = jobs_.find(old->spec.job_id);
    finished_order_.pop_front();
    if (it != jobs_.end()) jobs_.erase(it);
  } while (finished_order_.size() > options_.max_finished_jobs);
  // The next jobs to forget finished max_finished_jobs jobs ago: their memory has long left the
  // caches. Fetched in two stages, one job apart, while this job's other work goes on: the next
  // job's place in the table (its Job, which holds the id, came in during the last call), and
  // the Job after it.
  jobs_.prefetch(finished_order_.front()->spec.job_id);
  if (finished_order_.size() > 1) {
    const auto* after = reinterpret_cast<const char*>(finished_order_[1]);
    for (std::size_t at = 0; at < sizeof(Job); at += 64) __builtin_prefetch(after + at);
  }
}

}  // namespace zwq::broker
