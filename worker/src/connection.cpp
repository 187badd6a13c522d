// The worker's poll loop. Parts, in order:
//   1. run(): resolve, serve a session, back off and reconnect when the broker is lost.
//   2. control: InfoReq/InfoRep on a fresh DEALER per attempt (Lazy Pirate).
//   3. session: open the events SUB and a PUSH to the results endpoint (the ComputeThread opens
//      the tasks DEALER and its own results PUSH), Hello, poll until it ends.
//   4. events: BrokerHeartbeat (liveness, epoch), CancelEvent, ShutdownEvent.
//   5. from the ComputeThread: Welcome (the broker's, which the thread takes with the Tasks it
//      computes), Synced, Lost, Stopped.
//   6. output: Hello (sent by the ComputeThread on its tasks socket), WorkerHeartbeat and Bye
//      (on this loop's PUSH, so that they go out however long a slice takes).
#include "connection.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "drops.hpp"
#include "endpoints.hpp"
#include "zwq/codec.hpp"
#include "zwq/ipc_check.hpp"
#include "zwq/kernel.hpp"
#include "zwq/protocol.hpp"

namespace zwq::worker {
namespace {

using namespace std::chrono_literals;

// InfoReq is resent this often (on a new socket) until the broker answers.
constexpr Ms kInfoRetry{1000};
// On stop(), how long the slice in hand may take before Bye hands everything back anyway (its
// late outcome is then discarded by the broker).
constexpr Ms kStopGrace{2000};
// Close-time grace: a Bye may leave (the compute thread's sockets have their own).
constexpr int kByeLingerMs = 100;

std::string_view view(const zmq::message_t& m) {
  return {static_cast<const char*>(m.data()), m.size()};
}

}  // namespace

Connection::Connection(const WorkerOptions& options, spdlog::logger& log, const StopSignal& stop,
                       Counters& counters)
    : options_(options),
      log_(log),
      stop_(stop),
      counters_(counters),
      cache_(options.max_mappings, options.populate),
      executor_(cache_, options.kernels ? *options.kernels : KernelRegistry::builtin()),
      compute_(context_, executor_, options.worker_id, options.credit, log, counters) {}

// ---- 1. run ------------------------------------------------------------------------------

Worker::Exit Connection::run() {
  bool first = true;
  Backoff backoff;
  for (;;) {
    const auto info = resolve(first);
    if (!info) return Worker::Exit::kStopped;
    first = false;
    session_welcomed_ = false;
    const End end = serve(*info);
    if (end == End::kShutdown) return Worker::Exit::kShutdown;
    if (end == End::kStopped) return Worker::Exit::kStopped;
    bump(counters_.reconnects);
    if (session_welcomed_) backoff.reset();
    const Ms delay = backoff.next();
    log_.warn("worker {}: reconnecting to the broker at {} in {} ms", options_.worker_id,
              options_.broker, delay.count());
    if (stop_.sleep_for(static_cast<int>(delay.count()))) return Worker::Exit::kStopped;
  }
}

// ---- 2. control ---------------------------------------------------------------------------

std::optional<msg::InfoRep> Connection::resolve(bool first) {
  const auto start = Clock::now();
  const Ms limit{options_.connect_timeout_ms};
  // Why the broker does not answer, when its ipc socket says (": ..."), for the messages below.
  const auto reason = [&] {
    const IpcCheck check = probe_ipc_endpoint(options_.broker);
    return check.kind == IpcCheck::kNone ? std::string() : ": " + check.why;
  };
  if (first) {
    // A socket this user may not connect to stays so: waiting cannot help.
    if (const IpcCheck check = check_ipc_path(options_.broker); check.lasting()) {
      throw SetupError("cannot reach the broker at " + options_.broker + ": " + check.why);
    }
  }
  Backoff backoff;
  for (unsigned attempt = 1;; ++attempt) {
    Ms wait = kInfoRetry;
    if (first && limit.count() != 0) {
      const auto left = std::chrono::ceil<Ms>(start + limit - Clock::now());
      if (left <= Ms(0)) {
        const std::string why = reason();
        throw SetupError("no answer from the broker at " + options_.broker + " within " +
                         std::to_string(limit.count()) + " ms" +
                         (why.empty() ? " (is zwq-broker running there?)" : why));
      }
      wait = std::min(wait, left);
    }
    if (auto info = ask_info(wait, first)) return info;
    if (stop_.requested()) return std::nullopt;
    if (first) {
      if (attempt == 1)
        log_.info("worker {}: waiting for the broker at {}{}", options_.worker_id, options_.broker,
                  reason());
      continue;
    }
    const Ms delay = backoff.next();
    if (attempt == 1 || attempt % 10 == 0) {
      log_.warn("worker {}: the broker at {} does not answer (attempt {}){}; retrying",
                options_.worker_id, options_.broker, attempt, reason());
    }
    if (stop_.sleep_for(static_cast<int>(delay.count()))) return std::nullopt;
  }
}

std::optional<msg::InfoRep> Connection::ask_info(Ms wait, bool first) {
  // A fault in the broker's answer is fatal at start (the user named the wrong thing) but only
  // a reason to retry once we have served (the broker may be mid-upgrade).
  auto fail = [&](const std::string& why) -> std::optional<msg::InfoRep> {
    if (first) throw SetupError("broker at " + options_.broker + ": " + why);
    log_.error("worker {}: broker at {}: {}", options_.worker_id, options_.broker, why);
    return std::nullopt;
  };
  zmq::socket_t control(context_, zmq::socket_type::dealer);
  control.set(zmq::sockopt::linger, 0);
  try {
    control.connect(options_.broker);
  } catch (const zmq::error_t& e) {
    throw SetupError("cannot connect to the broker address '" + options_.broker + "': " + e.what());
  }
  const std::uint64_t corr = ++corr_;
  const std::string request = encode(msg::InfoReq{}, corr);
  (void)control.send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  (void)control.send(zmq::buffer(request), zmq::send_flags::dontwait);

  const auto deadline = Clock::now() + wait;
  while (!stop_.requested()) {
    const auto left = std::chrono::ceil<Ms>(deadline - Clock::now());
    if (left <= Ms(0)) break;
    zmq::pollitem_t items[] = {{control.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, stop_.fd(), ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, left);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      continue;
    }
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    zmq::message_t delimiter, frame;
    if (!control.recv(delimiter, zmq::recv_flags::dontwait)) continue;
    if (delimiter.size() != 0 || !delimiter.more()) {
      discard_more(control, delimiter);
      drop("control reply", "not [empty, frame]");
      continue;
    }
    (void)control.recv(frame, zmq::recv_flags::dontwait);
    if (discard_more(control, frame)) {
      drop("control reply", "more than [empty, frame]");
      continue;
    }
    auto env = decode_envelope(frame.data(), frame.size());
    if (!env.ok()) {
      if (env.error().code == ErrorCode::kVersionMismatch) return fail(env.error().to_string());
      drop("control reply", env.error().to_string());
      continue;
    }
    if (env.value().corr != corr) {
      drop("control reply", "unexpected corr " + std::to_string(env.value().corr));
      continue;
    }
    if (env.value().type == proto::MsgType::kErrorRep) {
      auto err = decode_body<msg::ErrorRep>(env.value());
      return fail(err.ok() ? Error{err.value().code, err.value().message}.to_string()
                           : "an undecodable ErrorRep");
    }
    auto info = decode_body<msg::InfoRep>(env.value());
    if (!info.ok()) {
      drop("InfoRep", info.error().to_string());
      continue;
    }
    if (info.value().version != proto::kVersion) {
      return fail("speaks protocol version " + std::to_string(info.value().version) +
                  ", this worker " + std::to_string(proto::kVersion));
    }
    msg::InfoRep rep = std::move(info).value();
    rep.tasks = connectable_endpoint(rep.tasks, options_.broker);
    rep.results = connectable_endpoint(rep.results, options_.broker);
    rep.events = connectable_endpoint(rep.events, options_.broker);
    return rep;
  }
  return std::nullopt;
}

// ---- 3. session ---------------------------------------------------------------------------

Connection::End Connection::serve(const msg::InfoRep& info) {
  log_.info("worker {}: broker at {} (epoch {:016x}, {} pid {}): tasks {}, results {}, events {}",
            options_.worker_id, options_.broker, info.epoch, info.host, info.pid, info.tasks,
            info.results, info.events);
  epoch_ = info.epoch;
  welcomed_ = false;
  // The compute thread drops whatever it holds of the last session when it opens this one's
  // sockets (open_sockets()).
  ++session_;
  End end = End::kLost;
  try {
    open_sockets(info);
    beats_.start(Clock::now(), info.heartbeat_ms, info.liveness);
    compute_.sync(++sync_sent_);
    register_when_ready();
    do {
      end = poll_once();
    } while (end == End::kNone);
    if (end == End::kStopped) finish_and_say_bye();
  } catch (const zmq::error_t& e) {
    // Not peer input but our sockets (an unusable announced endpoint, a context error).
    log_.error("worker {}: socket error: {}", options_.worker_id, e.what());
    end = End::kLost;
  }
  close_sockets();
  return end;
}

void Connection::open_sockets(const msg::InfoRep& info) {
  events_.emplace(context_, zmq::socket_type::sub);
  events_->set(zmq::sockopt::linger, 0);
  for (auto topic : {proto::kTopicHeartbeat, proto::kTopicCancel, proto::kTopicShutdown}) {
    events_->set(zmq::sockopt::subscribe, topic);
  }
  events_->connect(info.events);

  to_broker_.emplace(context_, zmq::socket_type::push);
  to_broker_->set(zmq::sockopt::linger, kByeLingerMs);
  to_broker_->connect(info.results);

  // The compute thread takes the Tasks and sends the Results.
  compute_.session(session_, info.tasks, info.results);
}

void Connection::close_sockets() {
  to_broker_.reset();
  events_.reset();
  compute_.session(session_, "", "");  // its sockets too
}

Connection::End Connection::poll_once() {
  if (stop_.requested()) return End::kStopped;
  const Ms timeout = std::min(beats_.until_next_deadline(Clock::now()), beats_.interval() / 2);
  zmq::pollitem_t items[] = {{events_->handle(), 0, ZMQ_POLLIN, 0},
                             {compute_.socket().handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, stop_.fd(), ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, 3, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
    return End::kNone;  // a signal: the next round checks the stop flag
  }
  if (stop_.requested()) return End::kStopped;
  beats_.loop_ran(Clock::now());  // after a SIGSTOP: before anything looks at the timers
  if (End end = forward_results(); end != End::kNone) return end;
  if (End end = drain_events(); end != End::kNone) return end;
  return keep_alive(Clock::now());
}

void Connection::drop(const char* what, const std::string& why) {
  note_drop(counters_, log_, options_.worker_id, what, why);
}

// ---- 4. events ----------------------------------------------------------------------------

Connection::End Connection::drain_events() {
  for (;;) {
    zmq::message_t topic;
    if (!events_->recv(topic, zmq::recv_flags::dontwait)) return End::kNone;
    if (!topic.more()) {
      drop("event", "topic without a body");
      continue;
    }
    zmq::message_t frame;
    (void)events_->recv(frame, zmq::recv_flags::dontwait);  // parts arrive together
    if (discard_more(*events_, frame)) {
      drop("event", "more than [topic, frame]");
      continue;
    }
    if (End end = on_event(topic, frame); end != End::kNone) return end;
  }
}

Connection::End Connection::on_event(const zmq::message_t& topic, const zmq::message_t& frame) {
  const std::string_view name = view(topic);
  auto env = decode_envelope(frame.data(), frame.size());
  if (!env.ok()) {
    drop("event", env.error().to_string());
    return End::kNone;
  }
  if (name == proto::kTopicHeartbeat) {
    auto hb = decode_body<msg::BrokerHeartbeat>(env.value());
    if (!hb.ok()) {
      drop("BrokerHeartbeat", hb.error().to_string());
      return End::kNone;
    }
    if (hb.value().epoch != epoch_) {
      log_.warn("worker {}: broker epoch changed from {:016x} to {:016x} (a restart)",
                options_.worker_id, epoch_, hb.value().epoch);
      return End::kLost;
    }
    const TimePoint now = Clock::now();
    beats_.broker_seen(now);
    beat_asked_ = beats_.answer_due(now);  // keep_alive() answers it
  } else if (name == proto::kTopicCancel) {
    auto cancel = decode_body<msg::CancelEvent>(env.value());
    if (!cancel.ok()) {
      drop("CancelEvent", cancel.error().to_string());
      return End::kNone;
    }
    compute_.cancel(cancel.value().job_id);
  } else if (name == proto::kTopicShutdown) {
    auto shutdown = decode_body<msg::ShutdownEvent>(env.value());
    if (!shutdown.ok()) {
      drop("ShutdownEvent", shutdown.error().to_string());
      return End::kNone;
    }
    log_.info("worker {}: the broker is shutting down", options_.worker_id);
    return End::kShutdown;
  } else {
    drop("event", "unexpected topic '" + std::string(name) + "'");
  }
  return End::kNone;
}

// ---- 5. from the compute thread ----------------------------------------------------------

// The broker's Welcome, which the compute thread took on the tasks socket (and checked).
void Connection::on_welcome(const std::string& frame) {
  auto welcome = decode<msg::Welcome>(frame.data(), frame.size());
  if (!welcome.ok()) return drop("Welcome", welcome.error().to_string());
  const msg::Welcome& w = welcome.value();
  if (!welcomed_) {
    log_.info("worker {}: registered (epoch {:016x}, credit {}, heartbeat {} ms, liveness {})",
              options_.worker_id, w.epoch, options_.credit, w.heartbeat_ms, w.liveness);
  }
  welcomed_ = true;
  session_welcomed_ = true;
  epoch_ = w.epoch;
  beats_.configure(w.heartbeat_ms, w.liveness);
  beats_.broker_seen(Clock::now());
}

// ---- 6. output ----------------------------------------------------------------------------

Connection::End Connection::keep_alive(TimePoint now) {
  beats_.loop_ran(now);
  if (beats_.broker_lost(now)) {
    log_.warn("worker {}: no heartbeat from the broker for {} ms", options_.worker_id,
              beats_.dead_after().count());
    return End::kLost;
  }
  const bool asked = std::exchange(beat_asked_, false);
  if (!asked && !beats_.beat_due(now)) return End::kNone;
  if (welcomed_ && beats_.silent_too_long(now)) {
    // We did not run for longer than the broker's patience (SIGSTOP, a suspended machine): it
    // has likely forgotten us, and would ignore our heartbeats from now on. A new Hello makes
    // sure; it requeues what we held, so the compute thread drops its queue (what it computed
    // still goes out, and the broker discards and counts it).
    log_.warn("worker {}: silent for {} ms (this process did not run): registering again",
              options_.worker_id, beats_.silent_for(now).count());
    welcomed_ = false;
    compute_.drop_queued();
    compute_.sync(++sync_sent_);
  }
  if (!welcomed_) {
    register_when_ready();
  } else {
    send_to_broker(encode(msg::WorkerHeartbeat{options_.worker_id, epoch_}));
  }
  return End::kNone;
}

// Says Hello (again) unless the compute thread is still busy with work from before: a worker
// stuck in an abandoned slice registers only once it is free, so that the broker never blames a
// fresh lease for the old slice's delay.
void Connection::register_when_ready() {
  if (welcomed_ || !to_broker_ || stop_.requested() || sync_seen_ < sync_sent_) return;
  send_hello();
}

void Connection::send_hello() {
  msg::Hello hello;
  hello.worker_id = options_.worker_id;
  hello.host = host_name();
  hello.memory = memory_id();  // what the executor checks a dataset's memory against
  hello.pid = static_cast<std::uint32_t>(::getpid());
  hello.credit = options_.credit;
  hello.tasks_frames = true;
  hello.job_refs = true;
  hello.kernels = executor_.registry().names();
  hello.kernel_specs = executor_.registry().specs();
  compute_.hello(encode(hello));  // free by now (Synced): it sends it at once
  beats_.sent(Clock::now());
}

void Connection::send_to_broker(const std::string& frame) {
  // Never blocks: a full pipe means the broker is away, and a lost heartbeat is repeated at
  // the next beat. The attempt counts as sent so that it is not retried in a loop.
  (void)to_broker_->send(zmq::buffer(frame), zmq::send_flags::dontwait);
  beats_.sent(Clock::now());
}

// Reads what the compute thread reports (it sends the Results to the broker itself).
Connection::End Connection::forward_results() {
  while (auto out = compute_.receive()) {
    if (out->stopped) {
      compute_stopped_ = true;
      compute_said_bye_ = out->said_bye;
      continue;
    }
    if (out->synced) {
      sync_seen_ = std::max(sync_seen_, *out->synced);
      register_when_ready();
      continue;
    }
    if (out->welcome) {
      // One read late, from a session that has ended, is not this session's registration.
      if (out->welcome_session == session_) on_welcome(*out->welcome);
      continue;
    }
    if (out->lost && *out->lost == session_) return End::kLost;
  }
  return End::kNone;
}

// stop(): the compute thread finishes the slice in hand (up to kStopGrace) and sends what it
// computed, then the Bye that hands the rest back to the broker at once. If it does not stop in
// time (or was not welcomed), the Bye goes from here. Heartbeats go on meanwhile.
void Connection::finish_and_say_bye() {
  compute_.stop();
  const auto deadline = Clock::now() + kStopGrace;
  while (!compute_stopped_) {
    const auto now = Clock::now();
    if (now >= deadline) {
      log_.warn("worker {}: the slice in hand did not finish within {} ms; handing it back",
                options_.worker_id, kStopGrace.count());
      break;
    }
    const Ms timeout = std::min(std::chrono::ceil<Ms>(deadline - now), beats_.interval() / 2);
    zmq::pollitem_t item{compute_.socket().handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, timeout);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
    if (forward_results() != End::kNone) break;
    if (welcomed_ && beats_.beat_due(Clock::now())) {
      send_to_broker(encode(msg::WorkerHeartbeat{options_.worker_id, epoch_}));
    }
  }
  say_bye();
}

void Connection::say_bye() {
  if (!welcomed_) return;
  if (!compute_said_bye_) send_to_broker(encode(msg::Bye{options_.worker_id, epoch_}));
  log_.info("worker {}: stopping (Bye sent)", options_.worker_id);
}

}  // namespace zwq::worker
