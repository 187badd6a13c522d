// Parts: 1. set-up (sockets, binding)  2. the loop  3. control requests  4. deferred replies
//        5. tasks endpoint (workers)  6. results endpoint  7. events and timers
//        8. dispatch  9. shutdown
#include "server.hpp"

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>
#include <thread>

#include "results_decoder.hpp"
#include "submit_decoder.hpp"
#include "wire.hpp"

namespace zwq::broker {

namespace {

// Messages read from one socket before the loop looks at the others: enough to amortise a
// poll, few enough that a flood on one endpoint cannot starve the rest.
constexpr int kDrainBudget = 256;
// The loop wakes at least this often, to notice stop() and expired workers.
constexpr Millis kMaxPoll{100};
// What one turn of the loop may take besides its poll (draining, dispatching) before a gap
// counts as the broker not having run.
constexpr Millis kLoopSlack{50};
// Gathered bytes per FetchRep: half the frame limit leaves room for the rest of the reply.
constexpr std::size_t kMaxFetchBytes = proto::kMaxFrameBytes / 2;
// Bad messages logged at warn per endpoint; the rest only at debug (they are still counted).
constexpr std::uint64_t kLoudBadMessages = 10;

std::uint64_t random_epoch() {
  std::random_device rd;
  std::uint64_t e = 0;
  while (e == 0) e = (std::uint64_t{rd()} << 32) ^ rd();
  return e;
}

SchedulerOptions scheduler_options(const BrokerOptions& o, std::uint64_t epoch) {
  SchedulerOptions s;
  s.epoch = epoch;
  s.heartbeat_ms = o.heartbeat_ms;
  s.liveness = o.liveness;
  s.limits.default_slice_size = o.default_slice_size;
  s.batch_target_us = o.batch_target_us;
  s.pipeline_depth = o.pipeline_depth;
  s.max_batch = o.max_batch;
  s.limits.max_slices_per_job = o.max_slices_per_job;
  s.max_finished_jobs = o.max_finished_jobs;
  s.max_finished_slices = o.max_finished_slices;
  s.lease_floor_ms = o.lease_floor_ms;
  s.lease_factor = o.lease_factor;
  s.lease_first_ms = o.lease_first_ms;
  s.max_lost_attempts = o.max_lost_attempts;
  return s;
}

const BrokerOptions& checked(const BrokerOptions& o) {
  if (o.heartbeat_ms == 0) throw SetupError("heartbeat_ms must be at least 1");
  // A worker answers a BrokerHeartbeat only after half an interval of silence and beats on its
  // own 1.25 intervals after its last message: one interval of patience is too little.
  if (o.liveness < 2) throw SetupError("liveness must be at least 2");
  if (o.default_slice_size == 0) throw SetupError("the default slice size must be at least 1");
  if (o.batch_target_us == 0) throw SetupError("batch_target_us must be at least 1");
  if (o.pipeline_depth == 0) throw SetupError("pipeline_depth must be at least 1");
  if (o.max_fetch_items == 0) throw SetupError("max_fetch_items must be at least 1");
  if (o.lease_floor_ms == 0) throw SetupError("lease_floor_ms must be at least 1");
  if (o.lease_factor == 0) throw SetupError("lease_factor must be at least 1");
  return o;
}

std::shared_ptr<spdlog::logger> or_null(std::shared_ptr<spdlog::logger> log) {
  if (log) return log;
  return std::make_shared<spdlog::logger>("zwq-broker",
                                          std::make_shared<spdlog::sinks::null_sink_mt>());
}

std::string bind_socket(zmq::socket_t& socket, const std::string& address, const char* name) {
  try {
    socket.bind(address);
    // The real address (the port chosen for "*"). A wildcard host stays as it is: peers
    // substitute the host they reached the control endpoint on.
    return socket.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    throw SetupError(std::string("cannot bind the ") + name + " endpoint to " + address + ": " +
                     e.what());
  }
}

}  // namespace

// ---- 1. set-up ----

Server::Server(const BrokerOptions& options, std::shared_ptr<spdlog::logger> logger)
    : options_(checked(options)),
      log_(or_null(std::move(logger))),
      epoch_(random_epoch()),
      host_(zwq::host_name()),
      pid_(static_cast<std::uint32_t>(::getpid())),
      ctx_(1),
      control_(ctx_, zmq::socket_type::router),
      tasks_(ctx_, zmq::socket_type::router),
      results_(ctx_, zmq::socket_type::pull),
      events_(ctx_, zmq::socket_type::xpub),
      kernels_(KernelRegistry::builtin()),
      sched_(scheduler_options(options_, epoch_), kernels_),
      register_asks_(Millis(options_.heartbeat_ms)) {
  const std::int64_t max_frame = proto::kMaxFrameBytes + 1024;  // the codec rejects the rest
  // Replies and the final ShutdownEvent get a second to leave; work for workers does not.
  control_.set(zmq::sockopt::linger, 1000);
  control_.set(zmq::sockopt::maxmsgsize, max_frame);
  tasks_.set(zmq::sockopt::linger, 0);
  tasks_.set(zmq::sockopt::maxmsgsize, max_frame);
  tasks_.set(zmq::sockopt::router_mandatory, 1);  // a send to a gone worker fails: requeue
  tasks_.set(zmq::sockopt::router_handover, 1);   // a restarted worker takes its id over
  tasks_.set(zmq::sockopt::sndhwm, 0);            // credit bounds what is queued to a worker
  results_.set(zmq::sockopt::linger, 0);
  results_.set(zmq::sockopt::maxmsgsize, max_frame);
  events_.set(zmq::sockopt::linger, 1000);

  plan_ = plan_endpoints(options_.bind);
  endpoints_.control = bind_socket(control_, plan_.control, "control");
  endpoints_.tasks = bind_socket(tasks_, plan_.tasks, "tasks");
  endpoints_.results = bind_socket(results_, plan_.results, "results");
  endpoints_.events = bind_socket(events_, plan_.events, "events");
  // After binding (a second broker on the same address fails before it touches the journal),
  // before the ready file (whoever waits for it finds the jobs restored).
  open_journal(Clock::now());
  if (!options_.ready_file.empty())
    write_ready_file(options_.ready_file, endpoints_.control + "\n");
  log_->info("broker bound: control {} tasks {} results {} events {} epoch {:016x}",
             endpoints_.control, endpoints_.tasks, endpoints_.results, endpoints_.events, epoch_);
}

Server::~Server() {
  close();
}

void Server::open_journal(TimePoint now) {
  if (options_.journal.empty()) return;
  JournalOptions jo;
  jo.dir = options_.journal;
  jo.flush_ms = options_.journal_flush_ms;
  jo.fsync_ms = options_.journal_fsync_ms;
  jo.max_finished = options_.max_finished_jobs;
  jo.rewrite_bytes = options_.journal_rewrite_bytes;
  try {
    journal_ = std::make_unique<Journal>(jo);
  } catch (...) {
    plan_.dir.remove();  // nothing of ours stays behind
    throw;
  }
  const JournalReplay& r = journal_->replay();
  std::size_t restored = 0, unfinished = 0;
  for (RecoveredJob& job : journal_->take_recovered()) {
    const std::string id = job.spec.job_id;
    if (Status st = sched_.restore(job, now); !st.ok()) {
      log_->warn("journal: job {} cannot be restored (kept in the journal): {}", id,
                 st.error().to_string());
      journal_->keep_unrestored(std::move(job));
      continue;
    }
    ++restored;
    if (const Job* j = sched_.find_job(id); j != nullptr && !j->final()) ++unfinished;
  }
  log_->info(
      "journal {}: {} records, {} jobs restored ({} unfinished resume), {} bad records, "
      "{} torn bytes cut, {} old finished jobs forgotten, {} jobs whose id a later job took",
      journal_->path(), r.records, restored, unfinished, r.bad_records, r.torn_bytes, r.forgotten,
      r.replaced);
  sched_.set_log(journal_.get());
  sched_.take_changes(changes_);  // jobs completed while restoring are announced to nobody
}

// The journal only grows while the broker runs: once it has doubled, it is written anew from
// the jobs held now. The loop makes the records; a thread writes them, and the loop finishes
// the rewrite (the records written meanwhile, the rename) on a later turn.
void Server::rewrite_journal(TimePoint now) {
  if (auto done = journal_->finish_rewrite(false)) {
    if (!done->ok()) {
      if (++journal_errors_ <= kLoudBadMessages) {
        log_->error("journal: {} (appended to as before)", done->error().to_string());
      }
    } else {
      log_->info("journal rewritten: {} jobs, {} -> {} bytes in {} ms ({} ms in the loop)",
                 rewrite_jobs_, rewrite_from_, journal_->file_bytes(),
                 millis_between(rewrite_started_, Clock::now()), rewrite_loop_ms_);
    }
  }
  if (!journal_->wants_rewrite()) return;
  rewrite_from_ = journal_->file_bytes();
  rewrite_started_ = Clock::now();
  sched_.jobs_in_order(journal_jobs_);
  rewrite_jobs_ = journal_jobs_.size();
  if (Status st = journal_->start_rewrite(journal_jobs_, now);
      !st.ok() && ++journal_errors_ <= kLoudBadMessages) {
    log_->error("journal: {} (appended to as before)", st.error().to_string());
  }
  rewrite_loop_ms_ = millis_between(rewrite_started_, Clock::now());
}

// ---- 2. the loop ----

void Server::run() {
  if (closed_) return;
  log_->info("broker serving: heartbeat {} ms, liveness {}, default slice size {}",
             options_.heartbeat_ms, options_.liveness, options_.default_slice_size);
  TimePoint now = Clock::now();
  next_heartbeat_ = now;
  while (keep_serving(now)) {
    zmq::pollitem_t items[] = {{results_.handle(), 0, ZMQ_POLLIN, 0},
                               {tasks_.handle(), 0, ZMQ_POLLIN, 0},
                               {control_.handle(), 0, ZMQ_POLLIN, 0},
                               {events_.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      const TimePoint due = now + poll_timeout(now);
      if (!spin(items, 4, due)) {
        zmq::poll(items, 4, std::max(Millis(0), std::chrono::ceil<Millis>(due - Clock::now())));
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) log_->error("poll failed: {}", e.what());
    }
    const TimePoint before = now;
    now = Clock::now();
    // The loop wakes at least every kMaxPoll (and every heartbeat): a longer gap means this
    // process did not run, and the workers' silence during it is not theirs.
    if (const auto gap = std::chrono::duration_cast<Millis>(now - before);
        gap > 2 * std::min(kMaxPoll, Millis(options_.heartbeat_ms)) + kLoopSlack) {
      sched_.forgive(gap);
    }
    // Subscriptions first: a job that ends in this turn has its JobEvent for a subscriber that
    // came in the same turn, as a plain PUB would have sent it.
    if (items[3].revents & ZMQ_POLLIN) drain_subscriptions();
    if (items[0].revents & ZMQ_POLLIN) drain_results(now);
    if (items[1].revents & ZMQ_POLLIN) drain_tasks(now);
    if (items[2].revents & ZMQ_POLLIN) drain_control(now);
    on_timers(now);
    dispatch_and_send(now);
  }
  close();
}

// Polls without sleeping until something is ready (true), or spin_until_ or `due` (the next
// timer) passes (false): a long --spin-us must not hold back heartbeats or a stop.
bool Server::spin(zmq::pollitem_t* items, int n, TimePoint due) {
  const TimePoint until = std::min(spin_until_, due);
  while (Clock::now() < until && stop_.load(std::memory_order_relaxed) == 0) {
    ++spin_polls_;
    if (zmq::poll(items, n, Millis(0)) > 0) return true;
    std::this_thread::yield();
  }
  return false;
}

// False once the loop should end: a ShutdownReq or a second stop() end it at once; a first
// stop() starts the drain, which ends when no job is left unfinished, no worker is left to
// finish one, or drain_ms passed.
bool Server::keep_serving(TimePoint now) {
  const int stops = stop_.load(std::memory_order_relaxed);
  if (stop_now_ || stops >= 2) return false;
  if (stops == 0) return true;
  if (!draining_) {
    draining_ = true;
    drain_deadline_ = now + Millis(options_.drain_ms);
    log_->info("broker stopping: new jobs are refused; running jobs get up to {} ms to finish",
               options_.drain_ms);
  }
  if (!sched_.has_unfinished_jobs() || sched_.worker_count() == 0 || now >= drain_deadline_) {
    if (sched_.has_unfinished_jobs()) {
      log_->warn("broker stopping with unfinished jobs: {}",
                 journal_ ? "they are in the journal and resume when the broker is restarted"
                          : "they are lost (no --journal)");
    }
    return false;
  }
  return true;
}

std::chrono::milliseconds Server::poll_timeout(TimePoint now) const {
  auto until = [now](TimePoint t) {
    return t <= now ? Millis(0) : std::chrono::ceil<Millis>(t - now);
  };
  Millis t = std::min(kMaxPoll, until(next_heartbeat_));
  if (auto d = held_.next_deadline()) t = std::min(t, until(*d));
  if (!progress_dirty_.empty()) t = std::min(t, Millis(options_.progress_interval_ms));
  return t;
}

// Announces what the scheduler changed: finished jobs answer their waiters and get a final
// JobEvent (and a CancelEvent if they failed or were cancelled); jobs with new results answer
// their held fetches and are marked for a progress JobEvent.
void Server::after_changes(TimePoint now) {
  sched_.take_changes(changes_);
  for (const WorkerLoss& l : changes_.losses) {
    log_->warn("worker {} {}: {}; {} slices requeued", l.worker_id,
               l.removed ? "lost" : "stalled (kept, given nothing until it reports again)", l.cause,
               l.requeued);
  }
  if (!changes_.finished.empty()) spin_until_ = now + std::chrono::microseconds(options_.spin_us);
  for (const std::string& id : changes_.finished) {
    progress_dirty_.erase(id);
    last_job_event_.erase(id);
    waits_.clear();
    fetches_.clear();
    held_.take_waits(id, waits_);
    held_.take_fetches(id, 0, true, fetches_);
    many_.clear();
    held_.job_finished(id, many_);
    for (const auto& w : waits_) answer_wait(w, now);
    for (const auto& f : fetches_) answer_fetch(f, now);
    for (const auto& w : many_) answer_wait_many(w, now);
    const Job* job = sched_.find_job(id);
    if (job == nullptr) continue;
    if (job->state == JobState::kDone) {
      if (log_->should_log(spdlog::level::info) || job_events_) {
        const JobStatus st = sched_.status(*job, now);
        log_->info("job {} done: {} slices in {} ms, value {}, {} retried, {} discarded", id,
                   st.total, st.elapsed_ms, job->result.value, st.retried, st.discarded);
        if (job_events_) publish(proto::kTopicJob, msg::JobEvent{st});
      }
      continue;
    }
    log_->warn("job {} {}: {}", id, job_state_name(job->state), job->error);
    if (job_events_) publish(proto::kTopicJob, msg::JobEvent{sched_.status(*job, now)});
    publish(proto::kTopicCancel, msg::CancelEvent{id});
  }
  for (const std::string& id : changes_.progressed) {
    const Job* job = sched_.find_job(id);
    if (job == nullptr || job->final()) continue;
    if (job_events_) progress_dirty_.insert(id);
    fetches_.clear();
    held_.take_fetches(id, job->collector.completion_order().size(), false, fetches_);
    for (const auto& f : fetches_) answer_fetch(f, now);
  }
}

// ---- 3. control requests ----

// A request that made jobs ends the drain: their slices go out, and the workers' results come
// in, before the next request is served. A client that sends its next SubmitMany while the
// broker makes the jobs of the last would otherwise have both made before any was dispatched,
// the workers idle meanwhile.
void Server::drain_control(TimePoint now) {
  submitted_ = false;
  answer_soon_ = false;
  for (int i = 0; i < kDrainBudget && !submitted_ && receive(control_, in_); ++i) {
    ++control_count_.received;
    if (in_.parts != 3 || in_.frames[1].size() != 0) {
      ++control_count_.dropped;
      log_->debug("control: dropped a message of {} frames (expected [identity, empty, frame])",
                  in_.parts);
      continue;
    }
    handle_control(std::string(in_.view(0)), in_.view(2), now);
    after_changes(now);
    // What answers a request that made jobs is their Results: spinning for them pays only if
    // one may finish within the spin. For a longer job the spin would only take a core from
    // its workers (zwq-bench's time split: a one-worker sum job's compute thread waited
    // 0.1-0.5 % of each job for a CPU with the spin after its submit, none without).
    if (!submitted_ || answer_soon_) {
      spin_until_ = now + std::chrono::microseconds(options_.spin_us);
    } else {
      ++spins_skipped_;
    }
  }
}

template <typename M>
void Server::reply(const ReplyTo& to, const M& m) {
  const std::string frame = encode(m, to.corr);
  if (send_frames(control_, {to.identity, std::string_view(), frame}) != SendResult::kSent) {
    ++control_count_.send_failed;
  }
}

void Server::reply_error(const ReplyTo& to, const Error& e) {
  reply(to, msg::ErrorRep{e.code, valid_utf8(e.message)});  // it may quote the peer's bytes
}

template <typename M, typename F>
void Server::serve(const Envelope& env, const ReplyTo& to, F&& handler) {
  auto m = decode_body<M>(env);
  if (!m.ok()) {
    ++control_count_.bad;
    log_->debug("control: bad {}: {}", proto::msg_type_name(M::kType), m.error().message);
    reply_error(to, m.error());
    return;
  }
  handler(m.value());
}

void Server::handle_control(const std::string& identity, std::string_view frame, TimePoint now) {
  // A SubmitMany of jobs that differ only in their ids is read without the object tree per job
  // (submit_decoder.hpp); anything else the usual way.
  if (auto fast = read_submit_many(frame.data(), frame.size())) {
    return on_submit_many(fast->req, ReplyTo{identity, fast->corr}, now);
  }
  auto env = decode_envelope(frame.data(), frame.size());
  if (!env.ok()) {
    if (++control_count_.bad <= kLoudBadMessages) {
      log_->warn("control: refused a request: {}", env.error().to_string());
    }
    reply_error(ReplyTo{identity, peek_corr(frame.data(), frame.size())}, env.error());
    return;
  }
  const Envelope& e = env.value();
  const ReplyTo to{identity, e.corr};
  using proto::MsgType;
  switch (e.type) {
    case MsgType::kInfoReq:
      serve<msg::InfoReq>(e, to, [&](const msg::InfoReq&) { reply(to, info()); });
      break;
    case MsgType::kSubmitReq:
      serve<msg::SubmitReq>(e, to, [&](const msg::SubmitReq& m) { on_submit(m, to, now); });
      break;
    case MsgType::kStatusReq:
      serve<msg::StatusReq>(e, to, [&](const msg::StatusReq& m) {
        if (m.job_id.empty()) return reply(to, msg::StatusRep{sched_.all_status(now)});
        const Job* job = sched_.find_job(m.job_id);
        if (job == nullptr) {
          return reply_error(to, make_error(ErrorCode::kUnknownJob, "no job '" + m.job_id + "'"));
        }
        reply(to, msg::StatusRep{{sched_.status_with_ahead(*job, now)}});
      });
      break;
    case MsgType::kSubmitManyReq:
      serve<msg::SubmitManyReq>(e, to,
                                [&](const msg::SubmitManyReq& m) { on_submit_many(m, to, now); });
      break;
    case MsgType::kWaitReq:
      serve<msg::WaitReq>(e, to, [&](const msg::WaitReq& m) { on_wait(m, to, now); });
      break;
    case MsgType::kWaitManyReq:
      serve<msg::WaitManyReq>(e, to, [&](msg::WaitManyReq& m) { on_wait_many(m, to, now); });
      break;
    case MsgType::kFetchReq:
      serve<msg::FetchReq>(e, to, [&](const msg::FetchReq& m) { on_fetch(m, to, now); });
      break;
    case MsgType::kCancelReq:
      serve<msg::CancelReq>(e, to, [&](const msg::CancelReq& m) {
        auto st = sched_.cancel(m.job_id, now);
        if (!st.ok()) return reply_error(to, st.error());
        reply(to, msg::CancelRep{st.value()});
      });
      break;
    case MsgType::kWorkersReq:
      serve<msg::WorkersReq>(
          e, to, [&](const msg::WorkersReq&) { reply(to, msg::WorkersRep{sched_.workers(now)}); });
      break;
    case MsgType::kShutdownReq:
      serve<msg::ShutdownReq>(e, to, [&](const msg::ShutdownReq&) {
        log_->info("shutdown requested by a client");
        reply(to, msg::ShutdownRep{});
        stop_now_ = true;
      });
      break;
    default:
      ++control_count_.bad;
      reply_error(
          to, make_error(ErrorCode::kUnknownType,
                         std::string(proto::msg_type_name(e.type)) + " is not a control request"));
      break;
  }
}

msg::InfoRep Server::info() const {
  msg::InfoRep r;
  r.epoch = epoch_;
  r.control = endpoints_.control;
  r.tasks = endpoints_.tasks;
  r.results = endpoints_.results;
  r.events = endpoints_.events;
  r.host = host_;
  r.pid = pid_;
  r.heartbeat_ms = options_.heartbeat_ms;
  r.liveness = options_.liveness;
  r.kernels = sched_.kernels().names();
  r.kernel_specs = sched_.kernels().specs();
  return r;
}

Error Server::refusal_while_draining() const {
  return make_error(ErrorCode::kShuttingDown,
                    "the broker is shutting down and accepts no new jobs");
}

Result<msg::SubmitRep> Server::submit_one(const JobSpec& job, TimePoint now) {
  auto rep = sched_.submit(job, now);
  if (!rep.ok()) {
    log_->info("submit refused: {}", rep.error().to_string());
    return rep;
  }
  const msg::SubmitRep& r = rep.value();
  if (!r.existed) {
    submitted_ = true;
    if (!answer_soon_) {  // once per request: the first short job settles it
      const Job* made = sched_.find_job(r.job_id);
      const double us = made != nullptr ? sched_.expected_us(*made) : 0;
      answer_soon_ = us <= 0 || us <= static_cast<double>(options_.spin_us);
    }
    log_->info("job {} submitted: kernel {}, {} elements from {} in {} slices of {}", r.job_id,
               job.kernel, job.count, job.first, r.total_slices, r.slice_size);
  }
  return rep;
}

void Server::on_submit(const msg::SubmitReq& m, const ReplyTo& to, TimePoint now) {
  if (draining_) return reply_error(to, refusal_while_draining());
  auto rep = submit_one(m.job, now);
  if (!rep.ok()) return reply_error(to, rep.error());
  const msg::SubmitRep& r = rep.value();
  if (m.wait_ms == 0) return reply(to, r);
  HeldWait w{to, r.job_id, now + Millis(m.wait_ms), true, r.existed};
  const Job* job = sched_.find_job(r.job_id);
  // A job of 0 slices is done already. Others are usually not: the reply waits for the
  // dispatch at the end of this turn and the worker's results.
  if (job == nullptr || job->final()) return answer_wait(w, now);
  held_.hold(std::move(w));
}

void Server::on_submit_many(const msg::SubmitManyReq& m, const ReplyTo& to, TimePoint now) {
  if (draining_) return reply_error(to, refusal_while_draining());
  msg::SubmitManyRep rep;
  rep.items.reserve(m.jobs.size());
  for (const JobSpec& job : m.jobs) {
    msg::SubmitItem& item = rep.items.emplace_back();
    item.job_id = valid_utf8(job.job_id);  // a refused one's may be anything
    const Status checked = check_job_spec(job);
    Result<msg::SubmitRep> r =
        checked.ok() ? submit_one(job, now) : Result<msg::SubmitRep>(checked.error());
    if (!r.ok()) {
      item.code = r.error().code;
      item.message = valid_utf8(r.error().message);
      continue;
    }
    item.job_id = r.value().job_id;
    item.total_slices = r.value().total_slices;
    item.slice_size = r.value().slice_size;
    item.existed = r.value().existed;
  }
  reply(to, rep);
}

// ---- 4. deferred replies (Wait, Fetch) ----

void Server::on_wait(const msg::WaitReq& m, const ReplyTo& to, TimePoint now) {
  const Job* job = sched_.find_job(m.job_id);
  if (job == nullptr) {
    return reply_error(to, make_error(ErrorCode::kUnknownJob, "no job '" + m.job_id + "'"));
  }
  if (job->final() || m.timeout_ms == 0) return answer_wait(HeldWait{to, m.job_id, now}, now);
  held_.hold(HeldWait{to, m.job_id, now + Millis(m.timeout_ms)});
}

void Server::answer_wait(const HeldWait& w, TimePoint now) {
  const Job* job = sched_.find_job(w.job_id);
  if (job == nullptr) {
    return reply_error(
        w.to, make_error(ErrorCode::kUnknownJob, "job '" + w.job_id + "' is no longer known"));
  }
  if (w.submit) {
    msg::SubmitRep rep{job->spec.job_id, job->collector.total(), job->spec.slice_size, w.existed};
    rep.status = sched_.status(*job, now);
    rep.finished = job->final();
    if (job->state == JobState::kDone) rep.result = job->full_result();
    return reply(w.to, rep);
  }
  msg::WaitRep rep;
  rep.status = sched_.status(*job, now);
  rep.finished = job->final();
  if (job->state == JobState::kDone) rep.result = job->full_result();
  reply(w.to, rep);
}

void Server::on_wait_many(msg::WaitManyReq& m, const ReplyTo& to, TimePoint now) {
  std::uint64_t unfinished = 0;
  for (const std::string& id : m.job_ids) {
    const Job* job = sched_.find_job(id);
    if (job != nullptr && !job->final()) ++unfinished;
  }
  const std::uint64_t listed = m.job_ids.size();
  const std::uint64_t want =
      m.min_finished == 0 ? listed : std::min<std::uint64_t>(m.min_finished, listed);
  const std::uint64_t final_now = listed - unfinished;
  HeldWaitMany w{to, std::move(m.job_ids), 0, now + Millis(m.timeout_ms)};
  if (m.timeout_ms == 0 || final_now >= want) return answer_wait_many(w, now);
  w.awaiting = want - final_now;
  held_.hold(std::move(w));
}

void Server::answer_wait_many(const HeldWaitMany& w, TimePoint now) {
  msg::WaitManyRep rep;
  std::size_t bytes = 0;
  for (const std::string& id : w.job_ids) {
    const Job* job = sched_.find_job(id);
    if (job != nullptr && !job->final()) {
      ++rep.left;
      continue;
    }
    if (bytes > kMaxFetchBytes) {  // the rest goes in the next reply
      ++rep.left;
      continue;
    }
    msg::WaitItem& item = rep.items.emplace_back();
    item.job_id = job != nullptr ? id : valid_utf8(id);  // (a known job's id is plain ASCII)
    if (job == nullptr) {
      item.code = ErrorCode::kUnknownJob;
      item.message = valid_utf8("no job '" + id + "'");
      continue;
    }
    item.status = sched_.status(*job, now);
    if (job->state == JobState::kDone) {
      item.result = job->full_result();
      for (const auto& g : item.result.gathered) bytes += g.size();
    }
  }
  reply(w.to, rep);
}

void Server::on_fetch(const msg::FetchReq& m, const ReplyTo& to, TimePoint now) {
  const Job* job = sched_.find_job(m.job_id);
  if (job == nullptr) {
    return reply_error(to, make_error(ErrorCode::kUnknownJob, "no job '" + m.job_id + "'"));
  }
  HeldFetch f{to, m.job_id, m.cursor, m.max_items, now + Millis(m.timeout_ms)};
  const bool nothing_new = m.cursor >= job->collector.completion_order().size();
  if (nothing_new && !job->final() && m.timeout_ms > 0) return held_.hold(std::move(f));
  answer_fetch(f, now);
}

void Server::answer_fetch(const HeldFetch& f, TimePoint now) {
  const Job* job = sched_.find_job(f.job_id);
  if (job == nullptr) {
    return reply_error(
        f.to, make_error(ErrorCode::kUnknownJob, "job '" + f.job_id + "' is no longer known"));
  }
  if (job->collector.results_released() && f.cursor < job->collector.covered()) {
    return reply_error(
        f.to, make_error(ErrorCode::kOutOfRange, "the per-slice results of job '" + f.job_id +
                                                     "' were released to bound the broker's memory "
                                                     "(--max-finished-slices " +
                                                     std::to_string(options_.max_finished_slices) +
                                                     "); its result and status are still known"));
  }
  const std::uint32_t max =
      f.max_items == 0 ? options_.max_fetch_items : std::min(f.max_items, options_.max_fetch_items);
  msg::FetchRep rep;
  rep.cursor = job->collector.page(f.cursor, max, kMaxFetchBytes, rep.items);
  rep.cursor = std::max(rep.cursor, f.cursor);
  rep.status = sched_.status(*job, now);
  reply(f.to, rep);
}

// ---- 5. tasks endpoint (workers) ----

void Server::drain_tasks(TimePoint now) {
  for (int i = 0; i < kDrainBudget && receive(tasks_, in_); ++i) {
    ++tasks_count_.received;
    if (in_.parts != 2) {
      ++tasks_count_.dropped;
      log_->debug("tasks: dropped a message of {} frames (expected [worker_id, frame])", in_.parts);
      continue;
    }
    handle_task(in_.view(0), in_.view(1), now);
    after_changes(now);
  }
}

void Server::handle_task(std::string_view identity, std::string_view frame, TimePoint now) {
  auto env = decode_envelope(frame.data(), frame.size());
  auto bad = [&](const Error& e) {
    if (++tasks_count_.bad <= kLoudBadMessages) {
      log_->warn("tasks: dropped a bad message: {}", e.to_string());
    } else {
      log_->debug("tasks: dropped a bad message: {}", e.to_string());
    }
  };
  if (!env.ok()) return bad(env.error());
  const Envelope& e = env.value();
  const std::string id(identity);
  switch (e.type) {
    case proto::MsgType::kHello: {
      auto m = decode_body<msg::Hello>(e);
      if (!m.ok()) return bad(m.error());
      const msg::Hello& h = m.value();
      if (h.worker_id != id) {
        ++tasks_count_.dropped;
        log_->warn("tasks: Hello names worker {} but its routing id differs; ignored", h.worker_id);
        return;
      }
      const HelloVerdict v = sched_.hello(h, now);
      if (v == HelloVerdict::kRejected) {
        ++tasks_count_.dropped;
        return;
      }
      log_->info(
          "worker {} {}: host {}, pid {}, credit {}", id,
          v == HelloVerdict::kReplaced ? "re-registered (its slices are requeued)" : "registered",
          h.host, h.pid, h.credit);
      send_welcome(id, now);
      return;
    }
    case proto::MsgType::kWorkerHeartbeat: {
      auto m = decode_body<msg::WorkerHeartbeat>(e);
      if (!m.ok()) return bad(m.error());
      if (!sched_.heartbeat(id, now)) {
        ++tasks_count_.dropped;
        ask_to_register(id, now);
      }
      return;
    }
    case proto::MsgType::kBye: {
      auto m = decode_body<msg::Bye>(e);
      if (!m.ok()) return bad(m.error());
      if (sched_.bye(id, now)) {
        log_->info("worker {} left", id);
      } else {
        ++tasks_count_.dropped;
      }
      return;
    }
    default:
      return bad(make_error(ErrorCode::kUnknownType, std::string(proto::msg_type_name(e.type)) +
                                                         " does not belong on the tasks endpoint"));
  }
}

// A worker the broker does not know sends heartbeats: one it forgot as unreachable whose
// connection then came back, or one of a broker run before this one. Left alone it would wait
// for work for ever (it hears this broker's heartbeats, so it never looks for another session).
// RegisterAgain, on its tasks connection if it has one here, makes it register (when
// register_asks.hpp says so); a worker between its Hello and its Welcome ignores it.
void Server::ask_to_register(const std::string& worker_id, TimePoint now) {
  if (!register_asks_.due(worker_id, now)) return;
  // Unreachable (no such connection) is the usual answer for a worker of another broker run.
  (void)send_frames(tasks_, {worker_id, encode(msg::RegisterAgain{epoch_})});
}

void Server::send_welcome(const std::string& worker_id, TimePoint now) {
  const std::string frame = encode(msg::Welcome{epoch_, options_.heartbeat_ms, options_.liveness});
  if (send_frames(tasks_, {worker_id, frame}) != SendResult::kSent) {
    ++tasks_count_.send_failed;
    log_->warn("worker {} unreachable for Welcome; forgotten", worker_id);
    sched_.lose_worker(worker_id, now);
  }
}

// ---- 6. results endpoint ----

void Server::drain_results(TimePoint now) {
  for (int i = 0; i < kDrainBudget && receive(results_, in_); ++i) {
    ++results_count_.received;
    if (in_.parts != 1) {
      ++results_count_.dropped;
      continue;
    }
    const std::string_view frame = in_.view(0);
    // Results the usual way only when the fast reading cannot take them (results_decoder.hpp).
    if (auto fast = read_results(frame.data(), frame.size())) {
      on_results(*fast, now);
      continue;
    }
    auto env = decode_envelope(frame.data(), frame.size());
    if (!env.ok()) {
      bad_result(env.error());
      continue;
    }
    if (env.value().type != proto::MsgType::kResults) {
      // A worker's loop sends its WorkerHeartbeat and Bye here, beside its compute thread's
      // Results (docs/PROTOCOL.md).
      on_worker_note(env.value(), now);
      after_changes(now);
      continue;
    }
    auto m = decode_body<msg::Results>(env.value());
    if (!m.ok()) {
      bad_result(m.error());
      continue;
    }
    on_results(m.value(), now);
  }
}

void Server::on_results(msg::Results& m, TimePoint now) {
  const ResultsTally tally = sched_.results(m, now);
  if (tally.stale_epoch) ++results_count_.dropped;
  if (tally.discarded > 0) {
    log_->debug("results: {} outcomes of job {} from worker {} discarded", tally.discarded,
                m.job_id, m.worker_id);
  }
  after_changes(now);
}

// WorkerHeartbeat or Bye on the results endpoint: the worker is named in the body, and a note
// of another epoch (from before a restart) is dropped.
void Server::on_worker_note(const Envelope& e, TimePoint now) {
  if (e.type == proto::MsgType::kWorkerHeartbeat) {
    auto m = decode_body<msg::WorkerHeartbeat>(e);
    if (!m.ok()) return bad_result(m.error());
    if (m.value().epoch != epoch_ || !sched_.heartbeat(m.value().worker_id, now)) {
      ++results_count_.dropped;
      if (!sched_.has_worker(m.value().worker_id)) ask_to_register(m.value().worker_id, now);
    }
    return;
  }
  if (e.type == proto::MsgType::kBye) {
    auto m = decode_body<msg::Bye>(e);
    if (!m.ok()) return bad_result(m.error());
    if (m.value().epoch == epoch_ && sched_.bye(m.value().worker_id, now)) {
      log_->info("worker {} left", m.value().worker_id);
    } else {
      ++results_count_.dropped;
    }
    return;
  }
  bad_result(make_error(ErrorCode::kUnknownType, std::string(proto::msg_type_name(e.type)) +
                                                     " does not belong on the results endpoint"));
}

// Counts a bad message on the results endpoint; the first few are logged.
void Server::bad_result(const Error& e) {
  if (++results_count_.bad <= kLoudBadMessages) {
    log_->warn("results: dropped a bad message: {}", e.to_string());
  }
}

// ---- 7. events and timers ----

void Server::drain_subscriptions() {
  for (int i = 0; i < kDrainBudget && receive(events_, in_); ++i) {
    if (in_.parts != 1) continue;
    const std::string_view frame = in_.view(0);
    if (frame.empty() || (frame[0] != 0 && frame[0] != 1)) continue;
    std::string topic(frame.substr(1));
    if (frame[0] == 1) {
      subscriptions_.insert(std::move(topic));
    } else {
      subscriptions_.erase(topic);
    }
  }
  // A subscription takes every topic it is a prefix of (the empty one takes all).
  job_events_ = std::any_of(subscriptions_.begin(), subscriptions_.end(),
                            [](const std::string& t) { return proto::kTopicJob.starts_with(t); });
}

template <typename M>
void Server::publish(std::string_view topic, const M& m) {
  const std::string frame = encode(m);
  if (send_frames(events_, {topic, frame}) != SendResult::kSent) ++events_send_failed_;
}

void Server::on_timers(TimePoint now) {
  (void)sched_.expire(now);  // the losses are logged by after_changes()
  if (journal_) {
    if (Status st = journal_->flush(now); !st.ok() && ++journal_errors_ <= kLoudBadMessages) {
      log_->error("journal: {} (kept in memory, tried again)", st.error().to_string());
    }
    rewrite_journal(now);
  }
  waits_.clear();
  fetches_.clear();
  many_.clear();
  held_.take_expired(now, waits_, fetches_, many_);
  for (const auto& w : waits_) answer_wait(w, now);
  for (const auto& f : fetches_) answer_fetch(f, now);
  for (const auto& w : many_) answer_wait_many(w, now);
  after_changes(now);

  if (now >= next_heartbeat_) {
    publish(proto::kTopicHeartbeat, msg::BrokerHeartbeat{epoch_});
    next_heartbeat_ = now + Millis(options_.heartbeat_ms);
  }
  const Millis interval(options_.progress_interval_ms);
  for (auto it = progress_dirty_.begin(); it != progress_dirty_.end();) {
    auto last = last_job_event_.find(*it);
    if (last != last_job_event_.end() && now - last->second < interval) {
      ++it;
      continue;
    }
    if (const Job* job = sched_.find_job(*it))
      publish(proto::kTopicJob, msg::JobEvent{sched_.status(*job, now)});
    last_job_event_[*it] = now;
    it = progress_dirty_.erase(it);
  }
}

// ---- 8. dispatch ----

void Server::dispatch_and_send(TimePoint now) {
  // A worker found gone while sending has its slices requeued: dispatch those again, a few
  // rounds at most (the next iteration picks up the rest).
  for (int round = 0; round < 4; ++round) {
    sched_.dispatch(dispatch_, now);
    bool lost = false;
    // What one dispatch gives a worker travels as one message, a Tasks frame per Dispatch in
    // their order (docs/PROTOCOL.md): one send and one wake-up of the worker for many one-slice
    // jobs, instead of one each. Not with --max-batch, whose point is a message per Tasks, nor
    // to an older worker, which would drop such a message.
    sent_.assign(dispatch_.size(), false);
    for (std::size_t i = 0; i < dispatch_.size(); ++i) {
      if (sent_[i]) continue;
      const std::string& worker = dispatch_[i].worker_id;
      const bool grouped = options_.max_batch == 0 && dispatch_[i].frames;
      // The next Dispatch of this worker after k, or the end.
      auto next = [&](std::size_t k) {
        while (++k < dispatch_.size() && dispatch_[k].worker_id != worker) {
        }
        return k;
      };
      if (send_frame(tasks_, worker, true) == SendResult::kSent) {
        for (std::size_t k = i; k < dispatch_.size();) {
          const std::size_t after = grouped ? next(k) : dispatch_.size();
          sent_[k] = true;
          const Dispatch& d = dispatch_[k];
          if (d.with_spec) {
            encode_tasks(tasks_frame_, epoch_, d.job->spec_bytes, d.ref, d.runs);
          } else {
            encode_tasks_by_ref(tasks_frame_, d.ref, d.runs);
          }
          // The identity went: the rest of the message cannot fail for want of a peer.
          (void)send_frame(tasks_, {tasks_frame_.data(), tasks_frame_.size()},
                           after < dispatch_.size());
          k = after;
        }
        continue;
      }
      for (std::size_t k = i; k < dispatch_.size(); k = next(k)) sent_[k] = true;  // lost with it
      ++tasks_count_.send_failed;
      log_->warn("worker {} unreachable; its slices are requeued", worker);
      sched_.lose_worker(worker, now);
      lost = true;
    }
    if (!lost) return;
  }
}

// ---- 9. shutdown ----

void Server::log_counters() const {
  const SchedulerCounters& s = sched_.counters();
  auto line = [&](const char* name, const EndpointCounters& c) {
    log_->info("{}: {} received, {} bad, {} dropped, {} sends failed", name, c.received, c.bad,
               c.dropped, c.send_failed);
  };
  line("control", control_count_);
  line("tasks", tasks_count_);
  line("results", results_count_);
  log_->info(
      "events: {} sends failed; scheduler: {} from unknown workers, {} stale-epoch results, "
      "{} outcomes of unknown jobs, {} workers expired, {} workers unreachable, {} leases "
      "expired, {} poison slices",
      events_send_failed_, s.unknown_worker, s.stale_epoch, s.orphan_outcomes, s.workers_expired,
      s.workers_lost, s.leases_expired, s.poison_slices);
  log_->info("loop: {} polls spinning (--spin-us), {} spins skipped after submits of long jobs",
             spin_polls_, spins_skipped_);
}

void Server::close() noexcept {
  if (closed_) return;
  closed_ = true;
  try {
    waits_.clear();
    fetches_.clear();
    many_.clear();
    held_.take_all(waits_, fetches_, many_);
    if (!journal_) {
      // Their jobs end with this broker. With a journal they do not: the clients time out, ask
      // again and find the job in the restarted broker.
      const Error bye = make_error(ErrorCode::kShuttingDown,
                                   "the broker is shutting down (without a journal: its unfinished "
                                   "jobs are lost)");
      for (const auto& w : waits_) reply_error(w.to, bye);
      for (const auto& f : fetches_) reply_error(f.to, bye);
      for (const auto& w : many_) reply_error(w.to, bye);
    }
    if (journal_) {
      // The jobs wait in the journal for a restart, and so do the workers (they reconnect).
      if (Status st = journal_->flush(Clock::now(), true); !st.ok()) {
        log_->error("journal: {}", st.error().to_string());
      }
    } else {
      publish(proto::kTopicShutdown, msg::ShutdownEvent{epoch_});
    }
    log_counters();
  } catch (...) {
    // Shutting down regardless: nothing here may escape a destructor.
  }
  control_.close();
  tasks_.close();
  results_.close();
  events_.close();
  ctx_.close();
  plan_.dir.remove();
  try {
    log_->info("broker stopped");
  } catch (...) {
  }
}

}  // namespace zwq::broker
