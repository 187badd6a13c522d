// Heartbeat and reconnect timing of a worker session. Socket-free; time is an input, so tests
// say "1.1 s passed" instead of sleeping (docs/PROTOCOL.md, "Heartbeats").
#pragma once

#include <chrono>
#include <cstdint>

namespace zwq::worker {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Ms = std::chrono::milliseconds;

// Thread safety: none (one per worker loop).
class Heartbeats {
 public:
  // Starts a session at `now`: the broker counts as just heard from and we as just sent.
  // An interval or liveness of 0 takes the protocol default.
  void start(TimePoint now, std::uint32_t interval_ms, std::uint32_t liveness);
  // Adopts the broker's numbers (from Welcome) without resetting the timers.
  void configure(std::uint32_t interval_ms, std::uint32_t liveness);

  // We sent the broker something (Hello, WorkerHeartbeat or Bye).
  void sent(TimePoint now) { last_sent_ = now; }
  // A BrokerHeartbeat of our epoch arrived.
  void broker_seen(TimePoint now) { last_broker_ = now; }
  // The worker's loop ran at `now` (it runs at least every half interval). A gap of more than
  // two intervals means this process did not run (SIGSTOP, a suspended machine): the broker's
  // silence during the gap is ours, not the broker's, and is not held against it — else a
  // frozen worker would drop what it computed instead of sending it when it wakes up.
  void loop_ran(TimePoint now);

  // Workers answer the broker's heartbeat instead of keeping a phase of their own, so that an
  // idle broker takes in all its workers' heartbeats in one burst a second rather than in one
  // wake-up per worker. A BrokerHeartbeat that arrived at `now` is answered when we were silent
  // for half an interval or more.
  bool answer_due(TimePoint now) const { return now - last_sent_ >= interval_ / 2; }
  // A WorkerHeartbeat is due without a BrokerHeartbeat to answer: a quarter interval later than
  // the broker's would have come, so that the broker's, not our timer, sets the phase.
  bool beat_due(TimePoint now) const { return now - last_sent_ >= overdue(); }
  // We were silent for interval * liveness (busy in one long slice, or stopped): the broker
  // has probably declared us dead and forgotten us, so we must say Hello again.
  bool silent_too_long(TimePoint now) const { return now - last_sent_ >= dead_after(); }
  // Time since we last sent anything.
  Ms silent_for(TimePoint now) const { return std::chrono::duration_cast<Ms>(now - last_sent_); }
  // No BrokerHeartbeat for interval * liveness: the broker is gone or unreachable.
  bool broker_lost(TimePoint now) const { return now - last_broker_ >= dead_after(); }
  // Time until beat_due or broker_lost turns true (zero if one already has).
  Ms until_next_deadline(TimePoint now) const;

  Ms interval() const { return interval_; }
  Ms overdue() const { return interval_ + interval_ / 4; }
  Ms dead_after() const { return interval_ * liveness_; }

 private:
  Ms interval_{1000};
  std::uint32_t liveness_ = 5;
  TimePoint last_sent_{};
  TimePoint last_broker_{};
  TimePoint last_loop_{};
};

// Delay before the next reconnect attempt: 100 ms, doubling up to 2 s, so a restarting broker
// is found quickly while a dead one costs one attempt every 2 s.
class Backoff {
 public:
  static constexpr Ms kFirst{100};
  static constexpr Ms kMax{2000};
  // The delay to wait now; the next call returns twice as much (at most kMax).
  Ms next();
  // After a successful connection: start again at kFirst.
  void reset() { delay_ = kFirst; }

 private:
  Ms delay_ = kFirst;
};

}  // namespace zwq::worker
