// zwq-bench's targets: which figures each check takes from a run's results, and its verdict.
#include "report.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <string>

using zwq::bench::BenchOptions;
using zwq::bench::Check;
using zwq::bench::targets;
using zwq::bench::verdict;
using json = nlohmann::json;

namespace {

constexpr std::uint64_t kKiB = 1024, kMiB = 1024 * 1024;

json median(double m) {
  return json{{"median", m}};
}

json sum_row(int workers, std::uint64_t slice_bytes, double gbps) {
  return json{{"workers", workers}, {"slice_bytes", slice_bytes}, {"gbps", median(gbps)}};
}

BenchOptions options() {
  BenchOptions o;
  o.workers = 2;
  o.slice_bytes = {256 * kKiB, kMiB, 4 * kMiB};
  return o;
}

// A run whose every target sits exactly at, or just past, its limit.
json results() {
  json r;
  r["limits"]["bw"]["bw1_gbps"] = median(10);
  r["limits"]["bw"]["bw2_gbps"] = median(20);
  r["limits"]["pushpull"]["ipc"]["msgs_per_s"] = median(4e6);  // not the baseline T3 takes
  r["zwq"]["sum"] =
      json::array({sum_row(1, 256 * kKiB, 1),  // below 1 MiB: not T1's
                   sum_row(1, kMiB, 9.5), sum_row(1, 4 * kMiB, 9.6), sum_row(2, 256 * kKiB, 1),
                   sum_row(2, kMiB, 18), sum_row(2, 4 * kMiB, 17.9)});
  r["zwq"]["noop"] = json::array({json{{"max_batch", 1},
                                       {"slices_per_s", median(2.5e6)},
                                       {"raw_pushpull_ipc_msgs_per_s", median(10e6)}},
                                  json{{"max_batch", 4096},
                                       {"slices_per_s", median(4.9e6)},
                                       {"raw_pushpull_ipc_msgs_per_s", median(10e6)}}});
  r["peers"]["seed_pyzmq"] = json::array({json{{"slice_bytes", kMiB}, {"gbps", median(9)}}});
  r["peers"]["pool_imap_unordered"] =
      json::array({json{{"slice_bytes", kMiB}, {"gbps", median(9.1)}}});
  return r;
}

const Check& find(const std::vector<Check>& checks, const std::string& id,
                  const std::string& part) {
  for (const Check& c : checks) {
    if (c.id == id && c.what.find(part) != std::string::npos) return c;
  }
  FAIL("no check " << id << " " << part);
  return checks.front();
}

}  // namespace

TEST_CASE("bench T1 takes the worst slice size of 1 MiB or more, and a value at the limit passes",
          "[bench]") {
  const auto checks = targets(options(), results());
  const Check& one = find(checks, "T1", "1 worker");
  CHECK(one.value == Approx(0.95));  // 9.5 / 10 at 1 MiB; the 256 KiB row is left out
  CHECK(verdict(one) == "PASS");
  const Check& two = find(checks, "T1", "2 worker");
  CHECK(two.value == Approx(0.895));  // 17.9 / 20 at 4 MiB
  CHECK(verdict(two) == "FAIL");
  CHECK(two.measured.find("4 MiB") != std::string::npos);
}

TEST_CASE("bench T1 takes the median ratio to BW measured beside each job, not the limits' BW",
          "[bench]") {
  json r = results();
  // The pairs' own ratios: their median (0.93) is not the ratio of the medians (18 / 19).
  auto beside = [](std::uint64_t slice_bytes, double gbps, double bw, double ratio) {
    json row = sum_row(2, slice_bytes, gbps);
    row["bw_beside_gbps"] = median(bw);
    row["ratio_to_bw_beside"] = median(ratio);
    return row;
  };
  r["zwq"]["sum"] = json::array(
      {sum_row(1, kMiB, 9.5), beside(kMiB, 18, 19, 0.93), beside(4 * kMiB, 17.9, 18.5, 0.96)});
  const auto checks = targets(options(), r);
  const Check& two = find(checks, "T1", "2 worker");
  CHECK(two.value == Approx(0.93));  // against the limits' BW2 of 20 it would be 0.895
  CHECK(verdict(two) == "PASS");
  CHECK(two.measured.find("1 MiB") != std::string::npos);
  CHECK(two.measured.find("19 GB/s") != std::string::npos);
  // A row without a baseline beside it falls back to the limits' BW1.
  CHECK(find(checks, "T1", "1 worker").value == Approx(0.95));
}

TEST_CASE("bench T3 divides by the raw rate measured beside each run, not the limits' one",
          "[bench]") {
  const auto checks = targets(options(), results());
  const Check& single = find(checks, "T3", "one per message");
  CHECK(single.value == Approx(0.25));  // 2.5 M against 10 M beside it (4 M in the limits)
  CHECK(verdict(single) == "PASS");
  const Check& batched = find(checks, "T3", "batched");
  CHECK(batched.value == Approx(0.49));
  CHECK(verdict(batched) == "FAIL");
}

TEST_CASE("bench T5 compares the workers' sum at 1 MiB with each peer's", "[bench]") {
  const auto checks = targets(options(), results());
  const Check& seed = find(checks, "T5", "seed");
  CHECK(seed.value == Approx(2.0));  // 18 / 9
  CHECK(verdict(seed) == "PASS");
  const Check& pool = find(checks, "T5", "imap_unordered");
  CHECK(verdict(pool) == "FAIL");  // 18 / 9.1 < 2
}

TEST_CASE("bench target of a section that did not run is not measured, never passed", "[bench]") {
  const auto checks = targets(options(), results());
  for (const char* id : {"T2", "T4", "T6", "T7"}) {
    INFO(id);
    const Check& c = find(checks, id, "");
    CHECK(std::isnan(c.value));
    CHECK(verdict(c) == "NOT MEASURED");
  }
  CHECK(verdict(find(checks, "T5", "asynchronous")) == "NOT MEASURED");
  // Nothing at all: every check is there, none passes.
  const auto empty = targets(options(), json::object());
  CHECK(empty.size() == checks.size());
  for (const Check& c : empty) CHECK(verdict(c) == "NOT MEASURED");
}

TEST_CASE(
    "bench splits a sum job's time into the compute threads' running, waiting and sleeping "
    "shares and their rate",
    "[bench]") {
  json r = results();
  // No row carries the split (the threads could not be read): no table.
  CHECK(zwq::bench::time_split_table(options(), r).empty());
  json row = sum_row(1, kMiB, 9.5);
  row["ratio_to_bw_beside"] = median(0.94);
  row["compute_busy_share"] = median(0.97);
  row["compute_rate_ratio_to_bw_beside"] = median(0.969);
  row["compute_wait_share"] = median(0.004);
  row["compute_asleep_share"] = median(0.026);
  json small = sum_row(1, 256 * kKiB, 1);  // below 1 MiB: left out
  small["compute_busy_share"] = median(0.5);
  small["compute_rate_ratio_to_bw_beside"] = median(0.5);
  r["zwq"]["sum"] = json::array({small, row, sum_row(2, kMiB, 18)});
  const std::string table = zwq::bench::time_split_table(options(), r);
  CHECK(table.find("| 1 MiB | 1 | 0.97 | 0.004 | 0.026 | 0.969× | 0.94× |") != std::string::npos);
  CHECK(table.find("256 KiB") == std::string::npos);
  CHECK(table.find("| 1 MiB | 2 |") == std::string::npos);  // no split for that row
  // A row from before the waiting clock was read: its two new shares are unknown, not 0.
  row.erase("compute_wait_share");
  row.erase("compute_asleep_share");
  r["zwq"]["sum"] = json::array({row});
  CHECK(zwq::bench::time_split_table(options(), r).find("| 1 MiB | 1 | 0.97 | — | — | 0.969× |") !=
        std::string::npos);
}

TEST_CASE("bench shows a value just off its limit with the digits that tell them apart",
          "[bench]") {
  Check c;
  c.id = "T5";
  c.op = ">=";
  c.limit = 2.0;
  c.value = 1.9993506;  // a failing 1.9994 rounds to the limit at 3 digits
  CHECK(verdict(c) == "FAIL");
  CHECK(zwq::bench::value_text(c) == "1.999×");
  c.value = 2.0;  // at the limit: passes, and reads as it
  CHECK(zwq::bench::value_text(c) == "2×");
  c.value = 0.9523;  // nowhere near it: 3 digits
  CHECK(zwq::bench::value_text(c) == "0.952×");
  Check t7;  // T7's values are plain numbers
  t7.id = "T7";
  t7.op = "<=";
  t7.limit = 1;
  t7.value = 1.0004;
  CHECK(verdict(t7) == "FAIL");
  CHECK(zwq::bench::value_text(t7) == "1.0004");
}
