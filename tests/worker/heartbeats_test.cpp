// Heartbeats and Backoff: the worker's timing, with time as an input.
#include "heartbeats.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using zwq::worker::Backoff;
using zwq::worker::Heartbeats;
using zwq::worker::Ms;
using zwq::worker::TimePoint;

namespace {
const TimePoint t0 = TimePoint{} + 1000s;
}

TEST_CASE("heartbeats are due a quarter interval after the broker's would have come", "[worker]") {
  Heartbeats beats;
  beats.start(t0, 1000, 5);
  CHECK_FALSE(beats.beat_due(t0 + 1249ms));
  CHECK(beats.beat_due(t0 + 1250ms));
  beats.sent(t0 + 1300ms);
  CHECK_FALSE(beats.beat_due(t0 + 2500ms));
  CHECK(beats.beat_due(t0 + 2550ms));
}

TEST_CASE("a broker heartbeat is answered after half an interval of silence, not sooner",
          "[worker]") {
  Heartbeats beats;
  beats.start(t0, 1000, 5);
  CHECK_FALSE(beats.answer_due(t0 + 499ms));  // we just spoke: no echo of every broker beat
  CHECK(beats.answer_due(t0 + 500ms));
  beats.sent(t0 + 1000ms);
  CHECK_FALSE(beats.answer_due(t0 + 1010ms));
  CHECK(beats.answer_due(t0 + 2000ms));
}

TEST_CASE("heartbeats declare the broker lost after liveness silent intervals", "[worker]") {
  Heartbeats beats;
  beats.start(t0, 200, 3);
  CHECK_FALSE(beats.broker_lost(t0 + 599ms));
  CHECK(beats.broker_lost(t0 + 600ms));
  beats.broker_seen(t0 + 500ms);
  CHECK_FALSE(beats.broker_lost(t0 + 1000ms));
  CHECK(beats.broker_lost(t0 + 1100ms));
}

TEST_CASE("heartbeats notice that we were silent long enough to be forgotten", "[worker]") {
  Heartbeats beats;
  beats.start(t0, 1000, 5);
  CHECK_FALSE(beats.silent_too_long(t0 + 4999ms));
  CHECK(beats.silent_too_long(t0 + 5s));
  CHECK(beats.silent_for(t0 + 5s) == 5000ms);
}

TEST_CASE("heartbeats take the protocol defaults for zero numbers", "[worker]") {
  Heartbeats beats;
  beats.start(t0, 0, 0);
  CHECK(beats.interval() == 1000ms);
  CHECK(beats.dead_after() == 5000ms);
}

TEST_CASE("heartbeats adopt the broker's numbers without resetting the timers", "[worker]") {
  Heartbeats beats;
  beats.start(t0, 1000, 5);
  beats.configure(100, 2);
  CHECK(beats.beat_due(t0 + 125ms));
  CHECK(beats.broker_lost(t0 + 200ms));
}

TEST_CASE("heartbeats tell the time to the next deadline", "[worker]") {
  Heartbeats beats;
  beats.start(t0, 1000, 5);
  CHECK(beats.until_next_deadline(t0) == 1250ms);
  CHECK(beats.until_next_deadline(t0 + 400ms) == 850ms);
  beats.sent(t0 + 4500ms);
  CHECK(beats.until_next_deadline(t0 + 4600ms) == 400ms);  // broker deadline at 5 s
  CHECK(beats.until_next_deadline(t0 + 6s) == 0ms);
}

TEST_CASE("heartbeats do not blame the broker for time this process did not run", "[worker]") {
  Heartbeats beats;
  beats.start(t0, 100, 3);
  for (auto t = t0; t <= t0 + 200ms; t += 50ms) beats.loop_ran(t);
  // Frozen (SIGSTOP) from 200 ms to 2.2 s: the broker's heartbeats could not be read meanwhile.
  beats.loop_ran(t0 + 2200ms);
  CHECK_FALSE(beats.broker_lost(t0 + 2200ms));
  CHECK(beats.broker_lost(t0 + 2500ms));  // still found lost if it stays silent after
  // But we were silent: the broker has likely forgotten us.
  CHECK(beats.silent_too_long(t0 + 2200ms));
}

TEST_CASE("heartbeats hold a silent broker against it while the loop runs", "[worker]") {
  Heartbeats beats;
  beats.start(t0, 100, 3);
  for (auto t = t0; t <= t0 + 300ms; t += 50ms) beats.loop_ran(t);
  CHECK(beats.broker_lost(t0 + 300ms));
}

TEST_CASE("backoff doubles from 100 ms to at most 2 s and resets", "[worker]") {
  Backoff backoff;
  CHECK(backoff.next() == 100ms);
  CHECK(backoff.next() == 200ms);
  CHECK(backoff.next() == 400ms);
  CHECK(backoff.next() == 800ms);
  CHECK(backoff.next() == 1600ms);
  CHECK(backoff.next() == 2000ms);
  CHECK(backoff.next() == 2000ms);
  backoff.reset();
  CHECK(backoff.next() == 100ms);
}
