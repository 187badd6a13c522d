// Private to `zwq submit`: how a job's outcome is printed.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "zwq/client.hpp"

namespace zwq::cli {

// Everything `zwq submit` reports about one job.
struct Outcome {
  JobSpec spec;
  JobStatus status;
  std::uint64_t total_slices = 0;
  std::optional<JobResult> result;  // set when the job is done
  std::optional<Error> error;       // set when it failed, was cancelled or timed out
  double seconds = 0;               // submit to result, as seen by the client
  // A job submitted before and waited for by id (`zwq wait`): its spec has only the id and
  // kernel, so the elements are the result's and there is no GB/s.
  bool attached = false;
  // False when the broker did not say (`zwq wait` of an unknown id): JSON "state" is null.
  bool state_known = true;
};

// Bytes the job's inputs hold over its range (0 for range kernels): the numerator of GB/s.
std::uint64_t input_bytes(const JobSpec& spec);

// `sum = 1.2345678901234567e+08` and a line of statistics, on stdout.
void print_human(const Outcome& outcome);
// One JSON object on stdout: job_id, kernel, state, value, variance, n, first, count, bins,
// underflow, overflow, total_slices, seconds, gbps, error (null where it does not apply).
void print_json(const Outcome& outcome);
// Sets `bins` (the histogram's own bins), `underflow` and `overflow` of `j` from a histogram's
// merged bins (bins..., underflow, overflow); all three null when there are none.
void put_histogram(nlohmann::json& j, const std::vector<std::uint64_t>& bins);
// print_json() or print_human(), then the error (if any) on stderr; returns `exit_code`.
int print_outcome(const Outcome& outcome, bool json, int exit_code);

}  // namespace zwq::cli
