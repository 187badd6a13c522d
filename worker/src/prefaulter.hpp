// Prefaulter: populates the pages a job reads next, on a thread of its own, while the compute
// thread sums the slice in hand. On a mapping fresh to the worker, the first pass then costs
// about the larger of populating and computing instead of their sum (T2 in docs/BENCHMARKS.md).
// What it populates is only ever what the compute thread would populate itself a moment later
// (MappedFile::prefault, chunk by chunk, each once): it changes no result, only when pages come.
// Its thread runs under SCHED_IDLE, on CPU time nothing else wants: with one worker on two cores
// that is a whole core, and the first pass costs about the larger of the two; with a worker on
// every core there is none, and the compute threads populate their own chunks rather than share
// their cores with it (zwq-bench --only cold, docs/BENCHMARKS.md: a 1 GiB first pass with two
// workers 0.058-0.064 s -> 0.052-0.055 s, with one unchanged).
//
// Error model: none. A chunk it has not populated yet when the compute thread gets there is
// populated by the compute thread, or faulted in page by page, as without it.
//
// Thread safety: ahead() is for one thread (the compute thread); the object owns its thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "zwq/mapping.hpp"

namespace zwq::worker {

class Prefaulter {
 public:
  struct Range {
    std::shared_ptr<const MappedFile> file;  // kept mapped while it waits and is populated
    std::size_t offset = 0;
    std::size_t length = 0;
  };

  Prefaulter() = default;
  ~Prefaulter();  // stops the thread (after the chunk in hand) and joins it
  Prefaulter(const Prefaulter&) = delete;
  Prefaulter& operator=(const Prefaulter&) = delete;

  // Replaces what waits to be populated with `ranges`: the caller has moved on past the older
  // ones. Starts the thread on first use.
  void ahead(std::vector<Range> ranges);
  // Blocks until everything asked of it is populated (tests and tools: its thread may wait for
  // an idle CPU for as long as the others are busy).
  void wait_idle();

 private:
  void run();

  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::vector<Range> pending_;
  bool working_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zwq::worker
