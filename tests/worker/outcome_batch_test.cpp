// OutcomeBatch: when slice outcomes leave in a Results message.
#include "outcome_batch.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using zwq::SliceOutcome;
using zwq::worker::OutcomeBatch;
using zwq::worker::TimePoint;

namespace {
const TimePoint t0 = TimePoint{} + 1000s;
SliceOutcome outcome(std::uint64_t slice) {
  SliceOutcome o;
  o.slice = slice;
  o.attempt = 1;
  return o;
}
}  // namespace

TEST_CASE("outcome batch is due when full", "[worker]") {
  OutcomeBatch batch;
  (void)batch.take(t0);
  for (std::uint64_t i = 0; i + 1 < OutcomeBatch::kMaxItems; ++i) batch.add(outcome(i));
  CHECK_FALSE(batch.flush_due(t0));
  batch.add(outcome(999));
  CHECK(batch.flush_due(t0));
  const auto items = batch.take(t0);
  CHECK(items.size() == OutcomeBatch::kMaxItems);
  CHECK(items.front().slice == 0);
  CHECK(batch.empty());
}

TEST_CASE("outcome batch is due 8 ms after the last flush", "[worker]") {
  OutcomeBatch batch;
  (void)batch.take(t0);
  CHECK_FALSE(batch.flush_due(t0 + 20ms));  // nothing to send
  batch.add(outcome(1));
  CHECK_FALSE(batch.flush_due(t0 + 7ms));
  CHECK(batch.flush_due(t0 + 8ms));
}

TEST_CASE("outcome batch is due when the next outcome would come 8 ms or more after the flush",
          "[worker]") {
  OutcomeBatch batch;
  (void)batch.take(t0);
  batch.add(outcome(1));
  // 1 ms slices: company comes before the delay ends.
  CHECK_FALSE(batch.flush_due(t0 + 1ms, 1ms));
  CHECK_FALSE(batch.flush_due(t0 + 6ms, 1ms));
  CHECK(batch.flush_due(t0 + 7ms, 1ms));
  // 5 ms slices: the next outcome would come at 10 ms, so this one goes now.
  CHECK(batch.flush_due(t0 + 5ms, 5ms));
  CHECK_FALSE(batch.flush_due(t0 + 2ms, 5ms));
}

TEST_CASE("outcome batch is due when its gathered bytes grow large", "[worker]") {
  OutcomeBatch batch;
  (void)batch.take(t0);
  SliceOutcome big = outcome(0);
  big.partial.bytes.assign(OutcomeBatch::kMaxBytes, 'x');
  batch.add(std::move(big));
  CHECK(batch.flush_due(t0));
}

TEST_CASE("outcome batch clear drops what it holds", "[worker]") {
  OutcomeBatch batch;
  batch.add(outcome(1));
  batch.clear();
  CHECK(batch.empty());
  CHECK(batch.take(t0).empty());
}

// The broker leases more slices only as outcomes come back: a worker of credit 16 holding its
// 16 outcomes until its Tasks message ends would wait a round trip for more work every time.
TEST_CASE("outcome batch of a small credit is due at half the credit", "[worker]") {
  OutcomeBatch batch(16);
  CHECK(batch.max_items() == 8);
  (void)batch.take(t0);
  for (std::uint64_t i = 0; i < 7; ++i) batch.add(outcome(i));
  CHECK_FALSE(batch.flush_due(t0 + 1ms));
  batch.add(outcome(7));
  CHECK(batch.flush_due(t0 + 1ms));
  CHECK(OutcomeBatch(1).max_items() == 1);
  CHECK(OutcomeBatch(4096).max_items() == OutcomeBatch::kMaxItems);
}
