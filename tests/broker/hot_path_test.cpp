// The broker's per-slice path: reading a Results message and taking its outcomes into the job
// allocate per message, not per slice (counted by the replaced operator new of
// tests/support/alloc_count.hpp).
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "alloc_count.hpp"
#include "results_decoder.hpp"
#include "scheduler_harness.hpp"
#include "zwq/codec.hpp"

using namespace zwq;
using namespace zwq::broker;
using namespace zwq::broker::test;
using zwq::test::allocations_during;

TEST_CASE("broker reads a Results message and takes its outcomes with no allocation per slice",
          "[broker]") {
  constexpr std::uint64_t kFew = 16, kMany = 2048;
  Harness h;
  h.hello("w1", 4096);
  const std::string job = h.submit(4096 * 10);
  REQUIRE(slices_in(h.dispatch(), "w1") == 4096);
  // Built before counting, as the worker's messages arrive built.
  msg::Results few = Harness::results_message("w1", job, {SliceRun{0, kFew, 1}}, 100);
  msg::Results many = Harness::results_message("w1", job, {SliceRun{kFew, kMany, 1}}, 100);
  const std::string few_frame = encode(few), many_frame = encode(many);

  const std::uint64_t read_few = allocations_during(
      [&] { CHECK(read_results(few_frame.data(), few_frame.size()).has_value()); });
  const std::uint64_t read_many = allocations_during(
      [&] { CHECK(read_results(many_frame.data(), many_frame.size()).has_value()); });
  CHECK(read_many == read_few);

  std::uint64_t accepted = 0;
  const std::uint64_t take_few =
      allocations_during([&] { accepted += h.sched.results(few, h.now).accepted; });
  const std::uint64_t take_many =
      allocations_during([&] { accepted += h.sched.results(many, h.now).accepted; });
  CHECK(accepted == kFew + kMany);
  INFO("allocations for " << kFew << " outcomes: " << take_few << ", for " << kMany << ": "
                          << take_many);
  CHECK(take_many <= take_few);
}
