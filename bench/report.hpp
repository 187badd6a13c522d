// The targets T1-T7 of one run's results (docs/BENCHMARKS.md): each check with its measured
// value, limit and verdict, as write_report() puts them in latest.json and latest.md.
#pragma once

#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "options.hpp"

namespace zwq::bench {

// One checked inequality: `value` (a ratio or an absolute figure) against `limit`.
struct Check {
  std::string id;
  std::string what;
  double value = std::numeric_limits<double>::quiet_NaN();  // NaN: not measured
  std::string op;                                           // ">=" or "<="
  double limit = 0;
  std::string measured;  // the figures behind the value, in words
};

// "PASS", "FAIL" or "NOT MEASURED" (a NaN value).
std::string verdict(const Check& c);

// The value as the targets table shows it: 3 significant digits ("0.952×"; T7's without "×"),
// more when that would print a value off its limit as the limit itself (1.9994 against 2 is
// "1.999×", not a failing "2×").
std::string value_text(const Check& c);

// The checks of results `r` (the JSON zwq-bench builds), in the order of the targets.
std::vector<Check> targets(const BenchOptions& o, const nlohmann::json& r);

// The markdown table splitting each sum job of 1 MiB slices and up into the shares of its wall
// time the compute threads ran, waited for a CPU and slept, and their rate while running (rows
// with "compute_busy_share", "compute_wait_share", "compute_asleep_share" and
// "compute_rate_ratio_to_bw_beside"; a share a row lacks shows as "—"); empty when no row has
// "compute_busy_share".
std::string time_split_table(const BenchOptions& o, const nlohmann::json& r);

// Adds "targets" to `results`, writes OUT/latest.json, OUT/latest.md and the plot data, and
// prints the table.
void write_report(const BenchOptions& o, nlohmann::json& results);

}  // namespace zwq::bench
