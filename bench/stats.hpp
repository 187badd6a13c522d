// Summaries of repeated measurements: every figure zwq-bench reports is the median of its runs,
// with the spread kept beside it, and latencies carry p50 and p99.
#pragma once

#include <chrono>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <vector>

namespace zwq::bench {

using nlohmann::json;

// The runs of one figure: median, min, max and the samples themselves.
struct Summary {
  double median = 0;
  double min = 0;
  double max = 0;
  std::vector<double> samples;  // in the order measured
};

// Summarises `samples` (an empty vector gives all zeros).
Summary summarize(std::vector<double> samples);
// The nearest-rank percentile `p` (0..100) of `samples`; 0 when empty.
double percentile(std::vector<double> samples, double p);

json to_json(const Summary& s);
// {"median": m, ...} -> m; 0 when absent.
double median_of(const json& summary);

// Seconds since construction, on the steady clock.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace zwq::bench
