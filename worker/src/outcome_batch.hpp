// OutcomeBatch: slice outcomes waiting to go out in one Results message. Socket-free.
//
// Batching trades latency for messages: one Results per slice would cost a message per 100 µs
// slice; one per Tasks message would hold early results back while a long run computes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "heartbeats.hpp"
#include "zwq/messages.hpp"

namespace zwq::worker {

class OutcomeBatch {
 public:
  // Enough outcomes to make a message worth its overhead (~30 bytes each, ~8 KiB a batch).
  static constexpr std::size_t kMaxItems = 256;
  // Gathered bytes per batch: far below the 64 MiB frame limit (kMaxFrameBytes).
  static constexpr std::size_t kMaxBytes = 16u << 20;
  // How long an outcome may wait for company: keeps the broker's view (and a client's
  // imap_unordered stream) current while a long run of slices costs at most 125 messages a
  // second. Each costs the compute thread tens of µs (it wakes the I/O thread on the other core).
  static constexpr Ms kMaxDelay{8};

  // A worker of `credit` sends its outcomes once half its credit waits in the batch (or
  // kMaxItems, if fewer): the broker leases more only as outcomes come back, and a worker that
  // held its whole credit until the end of a Tasks message would run dry for a round trip.
  explicit OutcomeBatch(std::uint32_t credit = 2 * kMaxItems)
      : max_items_(std::clamp<std::size_t>(credit / 2, 1, kMaxItems)) {}

  void add(SliceOutcome outcome);
  // A flush is due: max_items() or kMaxBytes reached, or the next outcome, expected `next` from
  // `now` (the time the last slice took), would come kMaxDelay or more after the last flush.
  // Waiting for company that comes too late only delays these: the broker, not told, hands a
  // job's last slices to the workers that reported, while this one runs dry (4.8 ms slices,
  // reported two at a time, gave one worker of two 9 of a job's 16 slices).
  bool flush_due(TimePoint now, Clock::duration next = Clock::duration::zero()) const;
  // Hands out the outcomes and restarts the batch (and the delay) at `now`.
  std::vector<SliceOutcome> take(TimePoint now);
  // Drops what is held (the job was cancelled or the broker lost).
  void clear() { items_.clear(), bytes_ = 0; }

  std::size_t max_items() const { return max_items_; }
  bool empty() const { return items_.empty(); }
  std::size_t size() const { return items_.size(); }

 private:
  std::size_t max_items_;
  std::vector<SliceOutcome> items_;
  std::size_t bytes_ = 0;
  TimePoint last_flush_{};
};

}  // namespace zwq::worker
