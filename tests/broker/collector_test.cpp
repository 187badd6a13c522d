// JobCollector: exactly-once acceptance and deterministic merging, without sockets or clocks.
#include "collector.hpp"

#include <algorithm>
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <random>

#include "pending.hpp"

using namespace zwq;
using namespace zwq::broker;

namespace {

SliceOutcome ok_outcome(std::uint64_t slice, std::uint32_t attempt, Partial p) {
  SliceOutcome o;
  o.slice = slice;
  o.attempt = attempt;
  o.partial = std::move(p);
  return o;
}

Partial sum_partial(std::uint64_t n, double hi, double lo = 0) {
  Partial p = identity_partial(Combiner::kSum);
  p.n = n;
  p.hi = hi;
  p.lo = lo;
  return p;
}

// A collector of `slices` slices of 10 elements, all leased in attempt 1.
JobCollector leased_collector(std::uint64_t slices, Combiner c, std::size_t bins = 0) {
  JobCollector col(SliceGeometry{0, slices * 10, 10}, c, bins);
  for (std::uint64_t s = 0; s < slices; ++s) col.lease(s);
  return col;
}

}  // namespace

TEST_CASE("collector accepts an outcome only for the slice's current attempt", "[broker]") {
  JobCollector col = leased_collector(2, Combiner::kSum);
  REQUIRE(col.requeue(0, 1));  // slice 0 is now pending with attempt 2
  CHECK(col.attempt(0) == 2);

  auto stale = ok_outcome(0, 1, sum_partial(10, 1.0));
  CHECK(col.offer(stale).verdict == Offer::Verdict::kDiscarded);

  col.lease(0);
  auto current = ok_outcome(0, 2, sum_partial(10, 1.0));
  CHECK(col.offer(current).verdict == Offer::Verdict::kAccepted);
  CHECK(col.covered() == 1);
  CHECK(col.discarded() == 1);
}

TEST_CASE("collector discards a duplicate and counts it", "[broker]") {
  JobCollector col = leased_collector(1, Combiner::kSum);
  auto a = ok_outcome(0, 1, sum_partial(10, 2.0));
  auto b = a;
  CHECK(col.offer(a).verdict == Offer::Verdict::kAccepted);
  CHECK(col.offer(b).verdict == Offer::Verdict::kDiscarded);
  CHECK(col.covered() == 1);
  CHECK(col.discarded() == 1);
  CHECK(col.complete());
}

TEST_CASE("collector discards outcomes for pending or out-of-range slices", "[broker]") {
  JobCollector col(SliceGeometry{0, 30, 10}, Combiner::kSum, 0);  // nothing leased yet
  auto pending = ok_outcome(0, 1, sum_partial(10, 1.0));
  auto beyond = ok_outcome(7, 1, sum_partial(10, 1.0));
  CHECK(col.offer(pending).verdict == Offer::Verdict::kDiscarded);
  CHECK(col.offer(beyond).verdict == Offer::Verdict::kDiscarded);
  CHECK(col.discarded() == 2);
  CHECK(col.covered() == 0);
}

TEST_CASE("collector folds sums in slice order whatever the arrival order", "[broker]") {
  constexpr std::uint64_t kSlices = 200;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> mant(-1.0, 1.0);
  std::uniform_int_distribution<int> expo(-30, 30);
  std::vector<Partial> partials;
  for (std::uint64_t s = 0; s < kSlices; ++s) {
    partials.push_back(sum_partial(10, std::ldexp(mant(rng), expo(rng)), 0));
  }
  auto run = [&](std::vector<std::uint64_t> order) {
    JobCollector col = leased_collector(kSlices, Combiner::kSum);
    for (std::uint64_t s : order) {
      auto o = ok_outcome(s, 1, partials[s]);
      REQUIRE(col.offer(o).verdict == Offer::Verdict::kAccepted);
    }
    REQUIRE(col.complete());
    auto m = col.merged();
    REQUIRE(m.ok());
    return m.value();
  };
  std::vector<std::uint64_t> order(kSlices);
  std::iota(order.begin(), order.end(), 0);
  const Partial reference = run(order);
  CHECK(reference.n == kSlices * 10);
  for (int trial = 0; trial < 10; ++trial) {
    std::shuffle(order.begin(), order.end(), rng);
    const Partial p = run(order);
    CHECK(std::bit_cast<std::uint64_t>(p.hi) == std::bit_cast<std::uint64_t>(reference.hi));
    CHECK(std::bit_cast<std::uint64_t>(p.lo) == std::bit_cast<std::uint64_t>(reference.lo));
  }
}

TEST_CASE("collector merges min partials on arrival", "[broker]") {
  JobCollector col = leased_collector(3, Combiner::kMin);
  const double values[] = {5.0, -2.0, 7.0};
  for (std::uint64_t s : {2, 0, 1}) {
    Partial p = identity_partial(Combiner::kMin);
    p.n = 10;
    p.hi = values[s];
    auto o = ok_outcome(s, 1, p);
    REQUIRE(col.offer(o).verdict == Offer::Verdict::kAccepted);
  }
  auto m = col.merged();
  REQUIRE(m.ok());
  CHECK(m.value().hi == -2.0);
  CHECK(m.value().n == 30);
}

TEST_CASE("collector keeps counts exactly and returns them per slice", "[broker]") {
  JobCollector col = leased_collector(2, Combiner::kCount);
  for (std::uint64_t s : {1, 0}) {
    Partial p = identity_partial(Combiner::kCount);
    p.n = 10;
    p.count = (std::uint64_t{1} << 60) + s;
    auto o = ok_outcome(s, 1, p);
    REQUIRE(col.offer(o).verdict == Offer::Verdict::kAccepted);
  }
  CHECK(col.slice_result(1).partial.count == (std::uint64_t{1} << 60) + 1);
  auto m = col.merged();
  REQUIRE(m.ok());
  CHECK(m.value().count == (std::uint64_t{1} << 61) + 1);
}

TEST_CASE("collector keeps gathered bytes in slice order", "[broker]") {
  JobCollector col = leased_collector(3, Combiner::kGather);
  for (std::uint64_t s : {2, 0, 1}) {
    Partial p = identity_partial(Combiner::kGather);
    p.n = 10;
    p.bytes = "slice" + std::to_string(s);
    auto o = ok_outcome(s, 1, p);
    REQUIRE(col.offer(o).verdict == Offer::Verdict::kAccepted);
  }
  CHECK(col.gathered() == std::vector<std::string>{"slice0", "slice1", "slice2"});
  auto m = col.merged();
  REQUIRE(m.ok());
  CHECK(m.value().n == 30);
}

TEST_CASE("collector fails on a partial of the wrong combiner", "[broker]") {
  JobCollector col = leased_collector(1, Combiner::kSum);
  auto o = ok_outcome(0, 1, identity_partial(Combiner::kMax));
  const Offer r = col.offer(o);
  CHECK(r.verdict == Offer::Verdict::kFailed);
  CHECK(r.code == ErrorCode::kKernelFailed);
  CHECK_THAT(r.problem, Catch::Contains("max"));
}

TEST_CASE("collector fails on histogram partials of another shape", "[broker]") {
  JobCollector col = leased_collector(1, Combiner::kHistogram, 4);
  auto o = ok_outcome(0, 1, identity_partial(Combiner::kHistogram, 5));
  CHECK(col.offer(o).verdict == Offer::Verdict::kFailed);
}

TEST_CASE("collector reports a worker's error as a failure", "[broker]") {
  JobCollector col = leased_collector(1, Combiner::kSum);
  SliceOutcome o;
  o.slice = 0;
  o.attempt = 1;
  o.code = ErrorCode::kDatasetMissing;
  o.message = "cannot open /dev/shm/x";
  const Offer r = col.offer(o);
  CHECK(r.verdict == Offer::Verdict::kFailed);
  CHECK(r.code == ErrorCode::kDatasetMissing);
  CHECK(r.problem == "cannot open /dev/shm/x");
  CHECK(col.covered() == 0);
}

TEST_CASE("collector pages results in acceptance order", "[broker]") {
  JobCollector col(SliceGeometry{100, 25, 10}, Combiner::kSum, 0);  // slices of 10, 10, 5
  for (std::uint64_t s = 0; s < 3; ++s) col.lease(s);
  for (std::uint64_t s : {2, 0, 1}) {
    auto o = ok_outcome(s, 1, sum_partial(col.geometry().slice_count(s), 1.0 * s));
    REQUIRE(col.offer(o).verdict == Offer::Verdict::kAccepted);
  }
  std::vector<SliceResult> items;
  CHECK(col.page(0, 2, 1 << 20, items) == 2);
  REQUIRE(items.size() == 2);
  CHECK(items[0].slice == 2);
  CHECK(items[0].first == 120);
  CHECK(items[0].count == 5);
  CHECK(items[0].partial.hi == 2.0);
  CHECK(items[1].slice == 0);
  items.clear();
  CHECK(col.page(2, 10, 1 << 20, items) == 3);
  REQUIRE(items.size() == 1);
  CHECK(items[0].slice == 1);
  items.clear();
  CHECK(col.page(3, 10, 1 << 20, items) == 3);
  CHECK(items.empty());
}

TEST_CASE("collector limits a page of gathered bytes but returns at least one item", "[broker]") {
  JobCollector col = leased_collector(3, Combiner::kGather);
  for (std::uint64_t s = 0; s < 3; ++s) {
    Partial p = identity_partial(Combiner::kGather);
    p.bytes.assign(100, 'x');
    auto o = ok_outcome(s, 1, p);
    REQUIRE(col.offer(o).verdict == Offer::Verdict::kAccepted);
  }
  std::vector<SliceResult> items;
  CHECK(col.page(0, 10, 50, items) == 1);
  items.clear();
  CHECK(col.page(0, 10, 250, items) == 2);
}

TEST_CASE("pending ranges hand out requeued slices first, split by attempt", "[broker]") {
  JobCollector col(SliceGeometry{0, 100, 10}, Combiner::kSum, 0);  // 10 slices
  PendingRanges pending;
  pending.reset(col.total());
  std::vector<SliceRun> runs;
  CHECK(pending.take(4, col, runs) == 4);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0] == SliceRun{0, 4, 1});

  // Slices 1 and 2 come back (attempt 2); slice 2 once more (attempt 3).
  REQUIRE(col.requeue(1, 1));
  REQUIRE(col.requeue(2, 1));
  pending.push_front(1, 3);
  CHECK(pending.size() == 8);
  runs.clear();
  CHECK(pending.take(1, col, runs) == 1);
  CHECK(runs[0] == SliceRun{1, 1, 2});
  REQUIRE(col.requeue(1, 2));
  pending.push_front(1, 2);

  runs.clear();
  CHECK(pending.take(10, col, runs) == 8);
  REQUIRE(runs.size() == 3);
  CHECK(runs[0] == SliceRun{1, 1, 3});
  CHECK(runs[1] == SliceRun{2, 1, 2});
  CHECK(runs[2] == SliceRun{4, 6, 1});
  CHECK(pending.empty());
  CHECK(col.leased() == 10);
}

TEST_CASE("collector with its results released pages nothing and takes no late outcome",
          "[broker]") {
  JobCollector col = leased_collector(3, Combiner::kSum);
  for (std::uint64_t s = 0; s < 3; ++s) {
    auto o = ok_outcome(s, 1, sum_partial(10, static_cast<double>(s)));
    REQUIRE(col.offer(o).verdict == Offer::Verdict::kAccepted);
  }
  std::vector<SliceResult> page;
  CHECK(col.page(0, 10, 1 << 20, page) == 3);
  CHECK_FALSE(col.results_released());

  col.release_results();
  CHECK(col.results_released());
  page.clear();
  CHECK(col.page(0, 10, 1 << 20, page) == 0);
  CHECK(page.empty());
  CHECK(col.completion_order().empty());
  // What a status reports stays; a late or repeated outcome is discarded, not stored.
  CHECK(col.total() == 3);
  CHECK(col.covered() == 3);
  auto late = ok_outcome(1, 1, sum_partial(10, 1.0));
  CHECK(col.offer(late).verdict == Offer::Verdict::kDiscarded);
  CHECK(col.compact(1).n == 0);
}
