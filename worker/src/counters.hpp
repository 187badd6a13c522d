// The worker's counters, bumped by its loop and its compute thread, read by Worker::stats().
#pragma once

#include <atomic>
#include <cstdint>

namespace zwq::worker {

struct Counters {
  std::atomic<std::uint64_t> slices_done{0};
  std::atomic<std::uint64_t> slice_errors{0};
  std::atomic<std::uint64_t> slices_dropped{0};
  std::atomic<std::uint64_t> dropped_messages{0};
  std::atomic<std::uint64_t> results_sent{0};
  std::atomic<std::uint64_t> reconnects{0};
};

// Relaxed: the counters are statistics, not synchronisation.
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t by = 1) {
  c.fetch_add(by, std::memory_order_relaxed);
}

}  // namespace zwq::worker
