// HeldReplies: which deferred Wait, Fetch and WaitMany replies are due.
#include "held_replies.hpp"

#include <catch2/catch.hpp>

using namespace zwq::broker;
using namespace std::chrono_literals;

TEST_CASE("held replies release waits of a finished job only", "[broker]") {
  HeldReplies held;
  const TimePoint t0 = TimePoint{} + 100s;
  held.hold(HeldWait{{"c1", 1}, "a", t0 + 5s});
  held.hold(HeldWait{{"c2", 2}, "b", t0 + 5s});
  std::vector<HeldWait> out;
  held.take_waits("a", out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].to.identity == "c1");
  CHECK(held.size() == 1);
}

TEST_CASE("held replies release fetches when results pass their cursor", "[broker]") {
  HeldReplies held;
  const TimePoint t0 = TimePoint{} + 100s;
  held.hold(HeldFetch{{"c1", 1}, "a", 3, 0, t0 + 5s});
  held.hold(HeldFetch{{"c2", 2}, "a", 5, 0, t0 + 5s});
  std::vector<HeldFetch> out;
  held.take_fetches("a", 3, false, out);
  CHECK(out.empty());
  held.take_fetches("a", 4, false, out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].cursor == 3);
  held.take_fetches("a", 0, true, out);  // final: everything goes
  CHECK(out.size() == 2);
  CHECK(held.size() == 0);
}

TEST_CASE("held replies expire at their deadline", "[broker]") {
  HeldReplies held;
  const TimePoint t0 = TimePoint{} + 100s;
  held.hold(HeldWait{{"c1", 1}, "a", t0 + 1s});
  held.hold(HeldFetch{{"c2", 2}, "a", 0, 0, t0 + 2s});
  CHECK(held.next_deadline() == t0 + 1s);
  std::vector<HeldWait> waits;
  std::vector<HeldFetch> fetches;
  std::vector<HeldWaitMany> many;
  held.take_expired(t0 + 999ms, waits, fetches, many);
  CHECK(waits.empty());
  held.take_expired(t0 + 1s, waits, fetches, many);
  CHECK(waits.size() == 1);
  CHECK(fetches.empty());
  CHECK(held.next_deadline() == t0 + 2s);
  held.take_all(waits, fetches, many);
  CHECK(fetches.size() == 1);
  CHECK_FALSE(held.next_deadline().has_value());
}

TEST_CASE("held replies release a WaitMany once enough of its jobs finished", "[broker]") {
  HeldReplies held;
  const TimePoint t0 = TimePoint{} + 100s;
  held.hold(HeldWaitMany{{"c1", 1}, {"a", "b", "c"}, 2, t0 + 5s});
  std::vector<HeldWaitMany> out;
  held.job_finished("a", out);
  CHECK(out.empty());
  held.job_finished("x", out);  // listed nowhere
  CHECK(out.empty());
  held.job_finished("c", out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].to.identity == "c1");
  CHECK(out[0].job_ids == std::vector<std::string>{"a", "b", "c"});
  CHECK(held.size() == 0);
  held.job_finished("b", out);  // released already: nothing left that lists it
  CHECK(out.size() == 1);
}

TEST_CASE("held replies count a job once per WaitMany that lists it", "[broker]") {
  HeldReplies held;
  const TimePoint t0 = TimePoint{} + 100s;
  held.hold(HeldWaitMany{{"c1", 1}, {"a", "b"}, 2, t0 + 5s});
  held.hold(HeldWaitMany{{"c2", 2}, {"a"}, 1, t0 + 5s});
  std::vector<HeldWaitMany> out;
  held.job_finished("a", out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].to.identity == "c2");
  held.job_finished("b", out);
  REQUIRE(out.size() == 2);
  CHECK(out[1].to.identity == "c1");
  CHECK(held.size() == 0);
}

TEST_CASE("held replies expire a WaitMany at its deadline and forget its jobs", "[broker]") {
  HeldReplies held;
  const TimePoint t0 = TimePoint{} + 100s;
  held.hold(HeldWaitMany{{"c1", 1}, {"a", "b"}, 2, t0 + 1s});
  CHECK(held.next_deadline() == t0 + 1s);
  std::vector<HeldWait> waits;
  std::vector<HeldFetch> fetches;
  std::vector<HeldWaitMany> many;
  held.take_expired(t0 + 999ms, waits, fetches, many);
  CHECK(many.empty());
  held.take_expired(t0 + 1s, waits, fetches, many);
  REQUIRE(many.size() == 1);
  CHECK(held.size() == 0);
  std::vector<HeldWaitMany> late;
  held.job_finished("a", late);
  CHECK(late.empty());
  CHECK_FALSE(held.next_deadline().has_value());
}
