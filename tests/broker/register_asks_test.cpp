// RegisterAsks: which heartbeats of unknown workers get a RegisterAgain. Time is passed in.
#include "register_asks.hpp"

#include <catch2/catch.hpp>

using namespace zwq::broker;
using namespace std::chrono_literals;

TEST_CASE("register asks go out at the first heartbeat and then once per interval per worker",
          "[broker]") {
  RegisterAsks asks(Millis(200));
  const TimePoint t0 = TimePoint{} + 1000s;
  CHECK(asks.due("ghost", t0));
  CHECK_FALSE(asks.due("ghost", t0 + 199ms));
  CHECK(asks.due("other", t0 + 199ms));  // each worker id on its own
  CHECK(asks.due("ghost", t0 + 200ms));
  CHECK_FALSE(asks.due("ghost", t0 + 399ms));
  CHECK(asks.due("ghost", t0 + 400ms));
}

TEST_CASE("register asks forget every id beyond their bound instead of growing", "[broker]") {
  RegisterAsks asks(Millis(1000), 3);
  const TimePoint t = TimePoint{} + 1000s;
  for (const char* id : {"a", "b", "c"}) CHECK(asks.due(id, t));
  CHECK(asks.size() == 3);
  CHECK_FALSE(asks.due("a", t));  // remembered: not asked again so soon
  CHECK(asks.due("d", t));        // a fourth id: the others are forgotten
  CHECK(asks.size() == 1);
  CHECK(asks.due("a", t));  // so "a" is asked again at once
}
