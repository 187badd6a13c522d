// PendingRanges: the slices of one job waiting to be handed out, as ranges [first, last) rather
// than one object per slice, so a queued slice costs nothing until it is dispatched.
//
// A fresh job is one range; slices requeued after a worker was lost go to the front (they hold up
// the job's completion). The attempt of each slice lives in the job's JobCollector; take() splits
// runs where the attempt changes and leases what it takes there. Suspect slices (held by a worker
// that was lost, JobCollector::suspect) are handed out one at a time.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "collector.hpp"
#include "zwq/messages.hpp"

namespace zwq::broker {

class PendingRanges {
 public:
  // Slices [0, total) are pending.
  void reset(std::uint64_t total);
  // Slices [first, last) are pending again; they are handed out before the rest.
  void push_front(std::uint64_t first, std::uint64_t last);
  void clear();
  // Slices in the ranges (a few may have been covered meanwhile; take() skips those).
  std::uint64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The slice take() would hand out first, if any (drops covered or leased entries on the way).
  std::optional<std::uint64_t> front(const JobCollector& book);

  // Takes up to `max` pending slices from the front, leases each in `book` and appends them to
  // `runs` as contiguous runs of one attempt (extending runs.back() when it continues). A suspect
  // slice at the front is taken alone; otherwise taking stops before the next suspect. Returns
  // the number of slices taken.
  std::uint64_t take(std::uint64_t max, JobCollector& book, std::vector<SliceRun>& runs);

 private:
  void skip_unavailable(const JobCollector& book);

  struct Range {
    std::uint64_t first;
    std::uint64_t last;
  };
  // Last to first: back() is handed out first. Almost every job has one range, which a vector
  // keeps in one small allocation (a deque takes two, one of them 512 bytes).
  std::vector<Range> ranges_;
  std::uint64_t size_ = 0;
};

}  // namespace zwq::broker
