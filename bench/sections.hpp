// The parts of one benchmark run. Each measures one group of figures and returns them as JSON
// (see docs/BENCHMARKS.md for the layout); report.cpp turns them into the table and the targets.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "options.hpp"
#include "report.hpp"
#include "zwq/shared_array.hpp"

namespace zwq::bench {

using nlohmann::json;

// Raw libzmq between two processes, with our own code: PUSH/PULL msgs/s of 32-byte messages and
// the REQ/REP round trip, over ipc and tcp (127.0.0.1).
json run_zmq_limits(const BenchOptions& o);
// One raw run, for baselines measured right beside a zwq figure: PUSH/PULL messages per second
// of 32-byte messages, and the times (µs) of `count` REQ/REP round trips; "ipc" or "tcp".
double raw_pushpull_rate(const std::string& transport, std::uint64_t messages);
std::vector<double> raw_reqrep_us(const std::string& transport, int count);
// The peer halves, run as `zwq-bench _push` / `zwq-bench _echo`.
int peer_push(const std::string& endpoint, std::uint64_t count, std::size_t size);
int peer_echo(const std::string& endpoint, std::uint64_t count);

// In-process sum of the warm array with 1 and 2 threads (BW1, BW2), with zwq's sum kernel.
json run_bandwidth(const BenchOptions& o, const SharedArray<float>& x);
// One in-process pass over the warm array (filled by fill_pattern) with `threads` threads in
// slices of `slice_elems`, as BW1 and BW2 are taken; GB/s. The baseline measured right beside
// each zwq sum job: this machine's memory bandwidth with two threads moves by half within
// seconds, so a baseline taken minutes earlier cannot be trusted (docs/BENCHMARKS.md).
double inprocess_sum_gbps(const SharedArray<float>& x, int threads, std::uint64_t slice_elems);
// In-process sums of freshly written arrays: MAP_POPULATE, then a warm pass; and a first pass
// through a plain mapping.
json run_cold_baseline(const BenchOptions& o);

// zwq: the sum of `x` with 1..workers workers over the slice sweep.
json run_zwq_sum(const BenchOptions& o, const SharedArray<float>& x, double expected);
// zwq: the first pass over a freshly written array.
json run_zwq_cold(const BenchOptions& o);
// zwq: no-op slices per second end to end, over the --max-batch sweep (slices per message).
json run_zwq_noop(const BenchOptions& o);
// zwq: single-slice job latency, submit to result.
json run_zwq_latency(const BenchOptions& o);
// zwq: many small jobs submitted asynchronously from one client.
json run_zwq_async(const BenchOptions& o);
// zwq: makespan with one worker throttled to 1/4 of a core (T6).
json run_zwq_uneven(const BenchOptions& o);
// zwq: idle broker CPU with many workers, broker memory per queued slice (T7).
json run_broker_cost(const BenchOptions& o);

// The Python peers on the same array and slice sizes (skipped without python3/numpy/zmq).
json run_peers(const BenchOptions& o, const std::string& array_path);

// One in-process pass of a reduce kernel ("sum", "fsum"; "dot", "fdot" with data2, of the same
// dtype) over data[0, n) with `threads` threads, each a contiguous share in slices of `slice`
// elements through run_kernel, exactly as zwq-worker calls the kernel; partials merged in
// order. Its seconds and the job's value.
struct TimedSum {
  double seconds = 0;
  double value = 0;
};
TimedSum timed_reduce(const std::string& kernel, const void* data, DType dtype, std::uint64_t n,
                      int threads, std::uint64_t slice, const void* data2 = nullptr);
// The exact sum against the plain one, in process, one thread, over the bench's array and over
// arrays of normal values (f32 and f64); the exact dot against the plain one over two arrays
// of normal float32 values.
json run_fsum(const BenchOptions& o, const SharedArray<float>& x);

// The "f32 array filled with a known pattern" used everywhere, and its exact sum.
void fill_pattern(float* x, std::uint64_t n);
double pattern_sum(std::uint64_t n);
std::string unique_name(const std::string& what);

}  // namespace zwq::bench
