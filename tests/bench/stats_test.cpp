// zwq-bench's summaries: every figure is the median of its runs, latencies carry p50 and p99.
#include "stats.hpp"

#include <catch2/catch.hpp>

using zwq::bench::percentile;
using zwq::bench::summarize;

TEST_CASE("bench summary is the median of the runs, keeping them in the order measured",
          "[bench]") {
  const auto odd = summarize({3.0, 1.0, 2.0, 9.0, 5.0});
  CHECK(odd.median == 3.0);
  CHECK(odd.min == 1.0);
  CHECK(odd.max == 9.0);
  CHECK(odd.samples == std::vector<double>{3.0, 1.0, 2.0, 9.0, 5.0});
  // An even count: the mean of the two middle runs, not one of them.
  CHECK(summarize({4.0, 1.0, 3.0, 2.0}).median == 2.5);
  const auto none = summarize({});
  CHECK(none.median == 0.0);
  CHECK(none.samples.empty());
}

TEST_CASE("bench percentile is nearest-rank, so p99 of 100 samples is the 99th", "[bench]") {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);  // unsorted on purpose
  CHECK(percentile(v, 50) == 50.0);
  CHECK(percentile(v, 99) == 99.0);
  CHECK(percentile(v, 100) == 100.0);
  CHECK(percentile({7.0}, 99) == 7.0);
  CHECK(percentile({}, 50) == 0.0);
}
