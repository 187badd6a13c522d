// Parts: 1. the Connection's side  2. the thread's loop and commands  3. computing a Tasks message
#include "compute.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>
#include <zmq_addon.hpp>

#include "drops.hpp"
#include "zwq/codec.hpp"
#include "zwq/protocol.hpp"

namespace zwq::worker {
namespace {

using namespace std::chrono_literals;

// Commands and outputs on the pipe (first frame, one byte).
constexpr char kHello = 'H', kCancel = 'C', kDrop = 'D', kStop = 'S', kSync = 'Y';
constexpr char kLost = 'L', kStopped = 'X', kSynced = 'Z', kWelcome = 'W';
constexpr char kSession = 'N';
// Close-time grace for the last Results.
constexpr int kResultsLingerMs = 1000;
// Close-time grace on the tasks socket (nothing there needs to outlive the session long).
constexpr int kTasksLingerMs = 100;
// Tasks-endpoint frames read per call of read_tasks(): the credit bounds them anyway.
constexpr int kTasksReadBudget = 64;
// Results messages queued towards a broker that does not read them; beyond this the broker is
// treated as lost (about 10 s of results at a high rate: the broker has long declared us dead).
constexpr int kResultsHwm = 10000;

// The pipe is read between slices after this many slices or this much time, whichever comes
// first: a cancel or stop is seen within ~100 µs of work, at one clock read per slice and one
// non-blocking receive per check.
constexpr unsigned kCheckEverySlices = 64;
constexpr auto kCheckEvery = 100us;
// A Tasks message that computed this long covers the round trip of a Results message and the
// Tasks it brings back (tens to hundreds of µs); see may_defer().
constexpr auto kLongTasks = 1ms;
// Tasks for a cancelled job that were already on their way are skipped for this long. Entries
// expire so that a job id reused much later is served again.
constexpr auto kCancelMemory = 30s;
// A gathered partial larger than this could not travel in one frame with its batch.
constexpr std::size_t kMaxPartialBytes = proto::kMaxFrameBytes / 4;

std::string u64_bytes(std::uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

std::uint64_t read_u64(const zmq::message_t& m) {
  std::uint64_t v = 0;
  if (m.size() == 8) std::memcpy(&v, m.data(), 8);
  return v;
}

std::uint64_t slices_in(const TasksFrame& t) {
  std::uint64_t n = 0;
  for (const SliceRun& r : t.runs) n += r.count;
  return n;
}

// Never blocks: both ends have no high-water mark, and a pipe whose peer is gone (the thread
// ended) has nobody left to tell.
void send_parts(zmq::socket_t& s, std::initializer_list<std::string_view> parts) {
  std::size_t i = 0;
  for (std::string_view p : parts) {
    const auto more = ++i < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
    if (!s.send(zmq::buffer(p.data(), p.size()), more | zmq::send_flags::dontwait)) return;
  }
}

}  // namespace

// ---- 1. the Connection's side ----

ComputeThread::ComputeThread(zmq::context_t& context, Executor& executor,
                             const std::string& worker_id, std::uint32_t credit,
                             spdlog::logger& log, Counters& counters)
    : executor_(executor),
      worker_id_(worker_id),
      log_(log),
      counters_(counters),
      pipe_(context, zmq::socket_type::pair),
      context_(context),
      batch_(credit) {
  char address[64];
  std::snprintf(address, sizeof address, "inproc://zwq-compute-%p", static_cast<void*>(this));
  address_ = address;
  pipe_.set(zmq::sockopt::linger, 0);
  pipe_.set(zmq::sockopt::sndhwm, 0);  // bounded by the broker's credit, never by the pipe
  pipe_.set(zmq::sockopt::rcvhwm, 0);
  pipe_.bind(address_);
  // Made and connected here, used only by the thread from its start on (starting a thread is
  // the full barrier a socket needs to change threads), so that no command can precede it.
  own_.emplace(context_, zmq::socket_type::pair);
  own_->set(zmq::sockopt::linger, 0);
  own_->set(zmq::sockopt::sndhwm, 0);
  own_->set(zmq::sockopt::rcvhwm, 0);
  own_->connect(address_);
  thread_ = std::thread([this] { run(); });
}

ComputeThread::~ComputeThread() {
  try {
    stop();
  } catch (...) {
  }
  if (thread_.joinable()) thread_.join();
}

void ComputeThread::session(std::uint64_t session, const std::string& tasks_endpoint,
                            const std::string& results_endpoint) {
  if (stop_sent_) return;  // the thread closes its sockets as it exits
  command({std::string_view(&kSession, 1), u64_bytes(session), tasks_endpoint, results_endpoint});
}

void ComputeThread::hello(const std::string& frame) {
  command({std::string_view(&kHello, 1), frame});
}

void ComputeThread::cancel(const std::string& job_id) {
  command({std::string_view(&kCancel, 1), job_id});
}

void ComputeThread::drop_queued() {
  command({std::string_view(&kDrop, 1)});
}

void ComputeThread::sync(std::uint64_t token) {
  command({std::string_view(&kSync, 1), u64_bytes(token)});
}

void ComputeThread::stop() {
  // Once: after Stop the thread ends, and a PAIR with no peer would block the next send.
  if (stop_sent_) return;
  stop_sent_ = true;
  command({std::string_view(&kStop, 1)});
}

void ComputeThread::command(std::initializer_list<std::string_view> parts) {
  send_parts(pipe_, parts);
  commands_sent_.fetch_add(1, std::memory_order_release);  // after the send: see check_commands()
}

std::optional<ComputeThread::Output> ComputeThread::receive() {
  std::vector<zmq::message_t> parts;
  if (!zmq::recv_multipart(pipe_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
    return std::nullopt;
  }
  Output out;
  if (parts.size() == 2 && parts[0].size() == 1 && *parts[0].data<char>() == kStopped) {
    out.stopped = true;
    out.said_bye = parts[1].to_string_view() == "1";
    return out;
  }
  if (parts.size() == 2 && parts[0].size() == 1 && *parts[0].data<char>() == kSynced) {
    out.synced = read_u64(parts[1]);
    return out;
  }
  if (parts.size() == 2 && parts[0].size() == 1 && *parts[0].data<char>() == kLost) {
    out.lost = read_u64(parts[1]);
    return out;
  }
  if (parts.size() == 3 && parts[0].size() == 1 && *parts[0].data<char>() == kWelcome) {
    out.welcome = parts[2].to_string();
    out.welcome_session = read_u64(parts[1]);
    return out;
  }
  return std::nullopt;  // cannot happen: only we write to it
}

// ---- 2. the thread's loop and commands ----

void ComputeThread::run() {
  try {
    while (!stopping_) {
      // Between Tasks messages the pipe is read at the same pace as between slices (every
      // kCheckEvery), and so is the tasks socket while Tasks messages are queued; an empty
      // queue reads it at once, unless the last message's end just did. Each look at an empty
      // socket costs libzmq two system calls (and the broker's I/O thread one more to wake the
      // reader after it): reading the messages that wait in one go, rather than one at a time
      // as they come, took a job of 10^6 one-slice Tasks messages from 1.1 s to 0.8 s.
      const bool waited = queue_.empty();
      if (waited) {
        prepared_.reset();
        prepared_for_.reset();
        if (!wait_for_input()) continue;
      }
      const bool tasks_fresh = std::exchange(tasks_read_, false) && !waited;
      // Commands first (when due), so that a cancel read with them is known before the Tasks
      // messages that follow; a cancel still in the pipe may let one short Tasks message of its
      // job run, whose outcomes the broker then discards.
      // One clock reading per message when nothing else is due: it is also when the message
      // starts (a reading costs more than a no-op slice).
      const TimePoint now = Clock::now();
      bool stale = false;  // something since `now` took time
      if (waited) {
        read_commands(now);
        stale = true;
      } else if (now - last_command_check_ >= kCheckEvery) {
        stale = check_commands(now);
      }
      if (!stopping_ && !tasks_fresh && (queue_.empty() || now - last_tasks_read_ >= kCheckEvery)) {
        read_tasks(now);
        stale = true;
      }
      // Deferred outcomes wait only for the Tasks message they were deferred for.
      if (deferred_ && (stopping_ || queue_.empty() || !same(*deferred_, queue_.front()))) {
        flush_deferred(Clock::now());
        stale = true;
      }
      if (stopping_ || queue_.empty()) continue;
      const Queued q = std::move(queue_.front());
      queue_.pop_front();
      process(q, stale ? Clock::now() : now);
    }
  } catch (const std::exception& e) {
    // Only our own pipe can throw here (the context is going away): nothing more to do.
    log_.error("worker {}: compute thread: {}", worker_id_, e.what());
  }
  // Stopped while welcomed: the Bye leaves on the results socket, behind the Results sent on it.
  // The Connection's own socket to the broker is another connection into the broker's PULL,
  // which may be read first: a Bye there could overtake the last Results, and the broker would
  // requeue, compute again and then discard slices this thread had finished. (When the slice in
  // hand outlasted the stop grace, the Connection has said Bye already: this second one comes
  // from a worker the broker no longer knows, which it counts and drops.)
  bool said_bye = false;
  try {
    if (stopping_ && welcomed_ && results_) {
      flush_deferred(Clock::now());
      said_bye =
          results_
              ->send(zmq::buffer(encode(msg::Bye{worker_id_, epoch_})), zmq::send_flags::dontwait)
              .has_value();
    }
  } catch (const zmq::error_t&) {
  }
  try {
    send_parts(*own_, {std::string_view(&kStopped, 1), std::string_view(said_bye ? "1" : "0")});
  } catch (...) {
  }
  tasks_.reset();
  results_.reset();  // its linger lets the last Results leave
  own_.reset();
}

// Blocks until a command or a message from the broker arrives; false on an interrupted wait.
bool ComputeThread::wait_for_input() {
  zmq::pollitem_t items[] = {{own_->handle(), 0, ZMQ_POLLIN, 0},
                             {tasks_ ? tasks_->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, tasks_ ? 2 : 1, std::chrono::milliseconds(-1));
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return false;
    throw;
  }
  return true;
}

void ComputeThread::read_commands(TimePoint now) {
  last_command_check_ = now;
  // Commands sent before this reading are in the pipe now, and read below.
  commands_read_ = commands_sent_.load(std::memory_order_acquire);
  for (;;) {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(*own_, std::back_inserter(parts), zmq::recv_flags::dontwait)) return;
    if (!parts.empty() && parts[0].size() == 1) on_command(parts);
  }
}

bool ComputeThread::check_commands(TimePoint now) {
  last_command_check_ = now;
  if (commands_sent_.load(std::memory_order_acquire) == commands_read_) return false;
  read_commands(now);
  return true;
}

void ComputeThread::on_command(std::vector<zmq::message_t>& parts) {
  const char cmd = *parts[0].data<char>();
  const auto now = Clock::now();
  auto interrupt = [&](Interrupt why) {
    if (!current_job_.empty() && interrupt_ == Interrupt::kNone) interrupt_ = why;
  };
  if (cmd == kSession && parts.size() == 4) {
    // A new session or the end of this one: what is queued or in hand was for a broker that is
    // gone or has requeued it, and its Results could no longer be sent.
    for (const Queued& q : queue_) bump(counters_.slices_dropped, slices_in(q.tasks));
    queue_.clear();
    interrupt(Interrupt::kAbandoned);
    open_session(read_u64(parts[1]), parts[2].to_string(), parts[3].to_string());
  } else if (cmd == kHello && parts.size() == 2) {
    // Read between slices or while idle, after the Sync that cleared the way: what was held
    // back goes out first. A Hello the Connection repeated before it saw our Welcome is
    // dropped once we are welcomed: read late (after a long slice), the broker would take it
    // for a re-registration and requeue what we hold.
    flush_deferred(now);
    if (tasks_ && !welcomed_) (void)tasks_->send(parts[1], zmq::send_flags::dontwait);
  } else if (cmd == kCancel && parts.size() == 2) {
    const std::string job_id = parts[1].to_string();
    std::erase_if(cancelled_, [&](const auto& kv) { return now - kv.second > kCancelMemory; });
    cancelled_[job_id] = now;
    std::uint64_t skipped = 0;
    std::erase_if(queue_, [&](const Queued& q) {
      if (q.tasks.job->job_id != job_id) return false;
      skipped += slices_in(q.tasks);
      return true;
    });
    bump(counters_.slices_dropped, skipped);
    if (job_id == current_job_) interrupt(Interrupt::kCancelled);
  } else if (cmd == kDrop) {
    for (const Queued& q : queue_) bump(counters_.slices_dropped, slices_in(q.tasks));
    queue_.clear();
    welcomed_ = false;  // what comes before the next Welcome was leased to the old registration
    interrupt(Interrupt::kDropped);
  } else if (cmd == kSync && parts.size() == 2) {
    // Read between slices or while idle: the slice before is done. Whatever is still in hand
    // was abandoned or dropped by the commands before this one (it stops before its next slice).
    // Outcomes held back go out first: Synced means everything before it was sent.
    flush_deferred(now);
    send_parts(*own_, {std::string_view(&kSynced, 1), u64_bytes(read_u64(parts[1]))});
  } else if (cmd == kStop) {
    stopping_ = true;
    for (const Queued& q : queue_) bump(counters_.slices_dropped, slices_in(q.tasks));
    queue_.clear();
    interrupt(Interrupt::kStopped);
  }
}

// Opens the session's sockets (closing the last session's). An endpoint we cannot use (a path
// too long for ipc, a transport libzmq lacks) means the session cannot work: Lost, so that the
// Connection starts another one.
void ComputeThread::open_session(std::uint64_t session, const std::string& tasks_endpoint,
                                 const std::string& results_endpoint) {
  tasks_.reset();
  results_.reset();
  results_session_ = session;
  lost_reported_ = false;
  welcomed_ = false;
  forget_held_job();
  if (tasks_endpoint.empty() && results_endpoint.empty()) return;
  try {
    results_.emplace(context_, zmq::socket_type::push);
    results_->set(zmq::sockopt::linger, kResultsLingerMs);
    results_->set(zmq::sockopt::sndhwm, kResultsHwm);
    results_->connect(results_endpoint);
    tasks_.emplace(context_, zmq::socket_type::dealer);
    tasks_->set(zmq::sockopt::routing_id, worker_id_);
    tasks_->set(zmq::sockopt::linger, kTasksLingerMs);
    tasks_->connect(tasks_endpoint);
  } catch (const zmq::error_t& e) {
    tasks_.reset();
    results_.reset();
    log_.error(
        "worker {}: cannot connect to the broker's tasks endpoint {} or results endpoint "
        "{}: {}",
        worker_id_, tasks_endpoint, results_endpoint, e.what());
    report_lost(session);
  }
}

void ComputeThread::read_tasks(TimePoint now) {
  last_tasks_read_ = now;
  if (!tasks_) return;
  for (int i = 0; i < kTasksReadBudget; ++i) {
    zmq::message_t frame;
    if (!tasks_->recv(frame, zmq::recv_flags::dontwait)) return;
    // A message may carry several Tasks, a frame each, to be taken in order (docs/PROTOCOL.md);
    // each frame stands alone, so a bad one is dropped alone. Parts arrive together.
    for (;;) {
      on_tasks_frame(frame);
      if (!frame.more() || !tasks_->recv(frame, zmq::recv_flags::dontwait)) break;
    }
  }
}

void ComputeThread::on_tasks_frame(const zmq::message_t& frame) {
  // Tasks messages the usual way only when the decoder cannot take them (see TasksDecoder).
  if (auto fast = decoder_.read(frame.data(), frame.size())) return accept(std::move(*fast));
  auto env = decode_envelope(frame.data(), frame.size());
  if (!env.ok()) return drop("tasks message", env.error().to_string());
  if (env.value().type == proto::MsgType::kWelcome) {
    auto welcome = decode_body<msg::Welcome>(env.value());
    if (!welcome.ok()) return drop("Welcome", welcome.error().to_string());
    welcomed_ = true;
    epoch_ = welcome.value().epoch;
    forget_held_job();  // the broker sends a job again after its Welcome
    send_parts(*own_, {std::string_view(&kWelcome, 1), u64_bytes(results_session_),
                       std::string_view(static_cast<const char*>(frame.data()), frame.size())});
    return;
  }
  if (env.value().type == proto::MsgType::kRegisterAgain) {
    // The broker does not know us (it forgot us as unreachable, or it is another run of it).
    // Sent before our Welcome, it crossed our Hello: nothing to do. Otherwise a new session
    // registers us again.
    if (!welcomed_) return;
    log_.warn("worker {}: the broker no longer knows this worker; registering again", worker_id_);
    return report_lost(results_session_);
  }
  if (env.value().type != proto::MsgType::kTasks) {
    return drop("tasks message", "unexpected type " + std::string(msg_type_name(env.value().type)));
  }
  auto t = decode_body<msg::Tasks>(env.value());
  if (!t.ok()) return drop("Tasks", t.error().to_string());
  accept(TasksFrame::from(std::move(t).value()));
}

void ComputeThread::accept(TasksFrame t) {
  if (!welcomed_) return drop("Tasks", "before Welcome");
  if (t.named()) {
    if (held_job_ == nullptr || t.ref != held_ref_) {
      // The broker believes we hold a job we never got: its Tasks went missing (the connection
      // broke and came back). Nothing can be trusted of this session any more; a new one
      // registers again, and the broker requeues everything it had leased to us.
      drop("Tasks", "names job ref " + std::to_string(t.ref) + ", which this worker does not hold");
      return report_lost(results_session_);
    }
    t.job = held_job_;
    t.epoch = epoch_;
  }
  if (t.epoch != epoch_) return drop("Tasks", "of epoch " + std::to_string(t.epoch));
  if (t.ref != 0) {
    // Held even when the job turns out cancelled below: the broker counts it as sent.
    held_ref_ = t.ref;
    held_job_ = t.job;
  }
  if (!cancelled_.empty() && cancelled(t.job->job_id, Clock::now())) {
    bump(counters_.slices_dropped, slices_in(t));
    log_.debug("worker {}: job {}: skipped {} slices of a cancelled job", worker_id_, t.job->job_id,
               slices_in(t));
    return;
  }
  queue_.push_back(Queued{results_session_, std::move(t)});
}

void ComputeThread::forget_held_job() {
  held_ref_ = 0;
  held_job_.reset();
}

void ComputeThread::drop(const char* what, const std::string& why) {
  note_drop(counters_, log_, worker_id_, what, why);
}

bool ComputeThread::cancelled(const std::string& job_id, TimePoint now) {
  auto it = cancelled_.find(job_id);
  if (it == cancelled_.end()) return false;
  if (now - it->second <= kCancelMemory) return true;
  cancelled_.erase(it);
  return false;
}

// ---- 3. computing a Tasks message ----

void ComputeThread::process(const Queued& q, TimePoint at) {
  const TasksFrame& t = q.tasks;
  const std::string& job_id = t.job->job_id;
  // The job made ready to run: the last one again while the thread stays busy with it.
  const bool preparing = !prepared_ || prepared_for_ != t.job;
  if (preparing) {
    prepared_ = executor_.prepare(*t.job);
    prepared_for_ = t.job;
  }
  const PreparedJob& job = *prepared_;
  if (job.setup_error()) {
    log_.warn("worker {}: job {}: {}", worker_id_, job_id, job.setup_error()->to_string());
  }
  log_.debug("worker {}: job {}: {} slices in {} runs", worker_id_, job_id, slices_in(t),
             t.runs.size());
  // (run() sent any deferred outcomes of another job.)
  const TimePoint started = preparing ? Clock::now() : at;
  current_job_ = job_id;
  interrupt_ = Interrupt::kNone;
  std::uint64_t computed = 0;
  bool logged_error = false;
  auto last_check = started;
  unsigned since_check = 0;
  // The first Tasks message of a job here reports its first slice at once: until a report says
  // how long the job's slices take, the broker lets a worker hold one small batch of it
  // (docs/PROTOCOL.md, "Batches"); told early, it sends the next batches while the rest of this
  // one computes, rather than the worker waiting a round trip for them after it.
  bool report_first = slices_in(t) > 1 && first_sight(job_id);
  // One clock read per slice: a slice starts when the one before it ended, unless sending or
  // reading commands came between (then the clock is read again).
  TimePoint start = started;
  Clock::duration last_slice{};

  for (const SliceRun& run : t.runs) {
    for (std::uint32_t i = 0; i < run.count && interrupt_ == Interrupt::kNone; ++i) {
      SliceOutcome o = job.run(run.first_slice + i, run.attempt);
      const auto now = Clock::now();
      ++computed;
      const auto us = std::chrono::ceil<std::chrono::microseconds>(now - start).count();
      slowest_us_ = std::max<std::uint64_t>(slowest_us_, std::max<std::int64_t>(us, 1));
      if (o.code == ErrorCode::kOk && o.partial.bytes.size() > kMaxPartialBytes) {
        o = SliceOutcome{o.slice,
                         o.attempt,
                         ErrorCode::kKernelFailed,
                         "the slice's partial has " + std::to_string(o.partial.bytes.size()) +
                             " bytes, more than a message may carry",
                         {}};
      }
      if (o.code == ErrorCode::kOk) {
        bump(counters_.slices_done);
      } else {
        bump(counters_.slice_errors);
        if (!logged_error) {  // the job fails with its first error: one line is enough
          log_.warn("worker {}: job {} slice {}: {}: {}", worker_id_, job_id, o.slice,
                    error_code_name(o.code), o.message);
          logged_error = true;
        }
      }
      batch_.add(std::move(o));
      last_slice = now - start;  // the next one is expected to take as long
      start = now;
      // (Read first: the early report is for the first slice only, whatever flush_due says.)
      const bool first = std::exchange(report_first, false);
      if (first || batch_.flush_due(now, last_slice)) {
        flush(owner_of(q), now);
        start = Clock::now();
      }
      if (++since_check >= kCheckEverySlices || now - last_check >= kCheckEvery) {
        since_check = 0;
        last_check = now;
        if (check_commands(now)) start = Clock::now();
      }
    }
  }

  // Finished, stopping or re-registering: what was computed goes out (after a re-registration
  // the broker counts it as discarded). Cancelled or abandoned: nobody wants it.
  // A Tasks message followed by another of its job sends its outcomes with that one's unless the
  // batch is due by the end of that one's first slice: one Results per batch delay rather than
  // one per Tasks message (each Results costs this thread a wake-up of the I/O thread, tens of
  // µs with caches cold from the kernel), but no outcome held a long slice for company.
  // (`start` is the last clock reading: the end of the last slice, or of what came after it.)
  // After a long message (kLongTasks) its outcomes wait only while two more are queued: the
  // broker leases more only as outcomes come back, and outcomes held until the last queued
  // message ended would leave this worker idle for a round trip; they go out while that last one
  // computes. (A worker holding four 64 MiB slices, ~2.5 ms each, ran dry every fourth.) The
  // socket is read first, so that what the broker sent while this message computed counts.
  const TimePoint finished = start;
  const bool long_message = finished - started >= kLongTasks;
  if (interrupt_ == Interrupt::kNone && !stopping_ && (queue_.empty() || long_message)) {
    read_tasks(finished);  // is its next one there?
    tasks_read_ = true;
  }
  if (interrupt_ == Interrupt::kCancelled || interrupt_ == Interrupt::kAbandoned) {
    batch_.clear();
    slowest_us_ = 0;
    deferred_.reset();
  } else if (may_defer(q, long_message ? 2 : 1, finished, last_slice)) {
    deferred_ = owner_of(q);
  } else {
    flush(owner_of(q), finished);
  }
  const std::uint64_t skipped = slices_in(t) - computed;
  if (skipped != 0) {
    bump(counters_.slices_dropped, skipped);
    const char* why = interrupt_ == Interrupt::kCancelled   ? "cancelled"
                      : interrupt_ == Interrupt::kDropped   ? "registering again"
                      : interrupt_ == Interrupt::kStopped   ? "stopping"
                      : interrupt_ == Interrupt::kAbandoned ? "broker lost"
                                                            : "?";
    log_.info("worker {}: job {}: dropped {} slices ({})", worker_id_, job_id, skipped, why);
  }
  current_job_.clear();
  interrupt_ = Interrupt::kNone;
}

bool ComputeThread::first_sight(const std::string& job_id) {
  if (std::find(recent_jobs_.begin(), recent_jobs_.end(), job_id) != recent_jobs_.end()) {
    return false;
  }
  recent_jobs_.push_back(job_id);
  if (recent_jobs_.size() > kRecentJobs) recent_jobs_.pop_front();
  return true;
}

ComputeThread::Owner ComputeThread::owner_of(const Queued& q) {
  return Owner{q.session, q.tasks.epoch, q.tasks.job->job_id};
}

bool ComputeThread::same(const Owner& owner, const Queued& q) {
  return owner.session == q.session && owner.epoch == q.tasks.epoch &&
         owner.job_id == q.tasks.job->job_id;
}

// Only a Tasks message that finished uninterrupted, whose job's next Tasks message is already
// queued (behind at least `queued` - 1 more), and whose batch is not due by the end of that
// one's first slice (expected to take `took`, as the last one did): its outcomes go with that
// one's, the batch's delay still bounding them between slices. Outcomes of long slices (5 ms,
// one per message) thus go out at once: the broker balances a job's last slices by them.
bool ComputeThread::may_defer(const Queued& q, std::size_t queued, TimePoint now,
                              Clock::duration took) const {
  return interrupt_ == Interrupt::kNone && !stopping_ && queue_.size() >= queued &&
         same(owner_of(q), queue_.front()) && !batch_.flush_due(now, took);
}

void ComputeThread::flush(const Owner& owner, TimePoint now) {
  deferred_.reset();
  if (batch_.empty()) return;
  msg::Results results;
  results.epoch = owner.epoch;
  results.worker_id = worker_id_;
  results.job_id = owner.job_id;
  results.items = batch_.take(now);
  results.slowest_us = slowest_us_;
  slowest_us_ = 0;
  emit(owner.session, encode(results));
}

void ComputeThread::flush_deferred(TimePoint now) {
  if (deferred_) flush(*deferred_, now);
}

// Sends a Results message of `session` to the broker, unless that session's socket is closed.
// (Results finished just as a session ends may still leave on its socket before the Session
// command that closes it is read; the broker drops them by epoch or as duplicates.)
void ComputeThread::emit(std::uint64_t session, const std::string& frame) {
  if (session != results_session_ || !results_) return;
  // Never blocks: kResultsHwm messages queued means the broker reads nothing.
  if (!results_->send(zmq::buffer(frame), zmq::send_flags::dontwait)) {
    if (!lost_reported_) {
      log_.warn("worker {}: the broker takes no results ({} messages queued)", worker_id_,
                kResultsHwm);
    }
    report_lost(session);
    return;
  }
  bump(counters_.results_sent);
}

void ComputeThread::report_lost(std::uint64_t session) {
  if (lost_reported_) return;  // once per session
  lost_reported_ = true;
  send_parts(*own_, {std::string_view(&kLost, 1), u64_bytes(session)});
}

}  // namespace zwq::worker
