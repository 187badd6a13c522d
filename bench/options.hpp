// What one zwq-bench run measures and how long it may take. Parsed once in main.cpp.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace zwq::bench {

struct BenchOptions {
  bool quick = false;  // smoke mode: small array, one run each, small counts
  int runs = 5;        // runs per figure; the median is reported
  std::uint64_t array_bytes = std::uint64_t{1} << 30;  // the f32 array summed everywhere
  int workers = 2;       // the largest worker count (the machine's cores)
  int worker_nice = 10;  // zwq-worker --nice, as LocalCluster (zwq local) starts them by default
  std::vector<std::string> broker_args;    // appended to every zwq-broker's command line
  std::vector<std::uint64_t> slice_bytes;  // slice sizes of the sum sweep
  std::vector<std::uint32_t> batches;   // no-op sweep: zwq-broker --max-batch (slices per message)
  std::uint32_t default_credit = 4096;  // zwq-worker's default: the largest batch ("batched")
  std::uint64_t noop_slices = 1000000;  // slices of the no-op job
  std::uint64_t pushpull_messages = 2000000;  // raw PUSH/PULL messages per run
  int reqrep_samples = 20000;                 // raw REQ/REP round trips per run
  int latency_samples = 5000;                 // single-slice jobs per run
  std::uint64_t async_jobs = 100000;          // small jobs per run
  int idle_workers = 100;                     // T7: workers connected to an idle broker
  double idle_seconds = 4;                    // T7: length of each idle measurement window
  std::uint64_t queued_slices = 1000000;      // T7: slices queued to measure broker memory
  std::uint64_t pool_noop_tasks = 200000;     // Pool.map(chunksize=1) tasks per run
  double job_timeout_s = 300;      // any one zwq job or peer run; then it counts as failed
  std::string bin_dir;             // zwq-broker and zwq-worker; default: beside us
  std::string python;              // interpreter for the peers; empty: no peers
  std::string peers_dir;           // bench/peers
  std::string out_dir;             // where latest.json, latest.md and plot data go
  std::string command;             // how this run was started (for the report)
  std::string revision;            // the source revision measured (for the report)
  std::set<std::string> sections;  // empty: all (limits, bw, cold, sum, noop, latency,
                                   // async, peers, uneven, broker)

  bool wants(const std::string& section) const {
    return sections.empty() || sections.count(section) > 0;
  }
  std::uint64_t array_elems() const { return array_bytes / 4; }
  // Jobs per slice size and worker count in the warm sum (T1), each paired with in-process
  // passes beside it: a 1 GiB job takes well under 0.1 s, and the ratio of one pair moves by
  // +-5 % on a noisy VM, so the median takes three times as many pairs as other figures.
  int sum_runs() const { return quick ? runs : 3 * runs; }
  // The worker counts compared with the 1- and 2-thread baselines: 1, and `workers` if more.
  std::vector<int> worker_counts() const {
    return workers > 1 ? std::vector<int>{1, workers} : std::vector<int>{1};
  }
};

}  // namespace zwq::bench
