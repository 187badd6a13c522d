// JobCollector: one job's per-slice book (attempt, pending/leased/covered), exactly-once
// acceptance of slice outcomes and the deterministic merge of their partials.
//
// Socket-free and clock-free. Memory per slice is ~38 bytes (state 1, attempt 4, lost attempts 1,
// compact partial 24, completion order 8) plus, for gather jobs, the slice's bytes.
//
// Merging (docs/PROTOCOL.md, "Results messages"): min, max, count, histogram and exact sum merge
// on arrival (their merge is exact in any order); sum and moments keep a compact (n, hi, lo) per
// slice and are folded in slice order by merged(), so the result is bitwise the same for any
// arrival order; gather keeps each slice's bytes and returns them in slice order.
//
// Not thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "zwq/messages.hpp"
#include "zwq/partial.hpp"
#include "zwq/status.hpp"

namespace zwq::broker {

// Where the slices of a job lie: slice i covers elements
// [first + i*slice_size, first + min(count, (i+1)*slice_size)).
struct SliceGeometry {
  std::uint64_t first = 0;
  std::uint64_t count = 0;
  std::uint64_t slice_size = 1;  // >= 1

  std::uint64_t slices() const { return count == 0 ? 0 : (count - 1) / slice_size + 1; }
  std::uint64_t slice_first(std::uint64_t s) const { return first + s * slice_size; }
  std::uint64_t slice_count(std::uint64_t s) const {
    return std::min(slice_size, count - s * slice_size);
  }
};

enum class SliceState : std::uint8_t { kPending = 0, kLeased = 1, kCovered = 2 };

// A slice's partial without its vectors, as the collector keeps it (and the journal stores it):
// sum (n, hi, lo), min/max (n, hi), moments (n, mean, M2), count (n, count as the bits of lo),
// exact sum (n and the two largest components, hi and lo: a slice's terms are merged, not kept),
// histogram and gather (n).
struct CompactPartial {
  std::uint64_t n = 0;
  double hi = 0;
  double lo = 0;
};

// What became of one offered outcome.
struct Offer {
  enum class Verdict { kAccepted, kDiscarded, kFailed };
  Verdict verdict = Verdict::kDiscarded;
  ErrorCode code = ErrorCode::kOk;  // kFailed: why
  std::string problem;  // kFailed: the worker's message, or what is wrong with the partial
};

class JobCollector {
 public:
  JobCollector() = default;
  // Every slice starts pending with attempt 1. `histogram_bins` shapes the histogram identity.
  JobCollector(SliceGeometry geometry, Combiner combiner, std::size_t histogram_bins);

  const SliceGeometry& geometry() const { return geo_; }
  Combiner combiner() const { return combiner_; }
  std::uint64_t total() const { return total_; }
  std::uint64_t covered() const { return covered_; }
  std::uint64_t leased() const { return leased_; }
  std::uint64_t discarded() const { return discarded_; }
  bool complete() const { return covered_ == total_; }

  // ---- the slice book ----
  // State and current attempt of slice s (kCovered / 0 once the book is released or s is out of
  // range).
  SliceState state(std::uint64_t s) const;
  std::uint32_t attempt(std::uint64_t s) const;
  // Marks a pending slice leased; returns the attempt it is handed out with.
  std::uint32_t lease(std::uint64_t s);
  // A lease of slice s in `attempt` is void (its worker is gone): if the slice is still leased in
  // that attempt it becomes pending again with attempt + 1 and true is returned.
  bool requeue(std::uint64_t s, std::uint32_t attempt);
  // True if slice s is leased and `attempt` is its current attempt: its outcome is awaited.
  bool is_leased(std::uint64_t s, std::uint32_t attempt) const;
  // Frees the per-slice state once the job is final (results stay readable).
  void release_book();
  // Frees the per-slice results of a final job as well (partials, gathered bytes, completion
  // order): page() then has nothing to give and results_released() says why. Totals, the
  // covered count and an order-insensitive merged state stay. Used to bound what the broker
  // keeps of finished jobs (Scheduler: max_finished_slices).
  void release_results();
  bool results_released() const { return results_released_; }

  // ---- lost attempts (poison slices, docs/RELIABILITY.md) ----
  // One more attempt of slice s was lost with its worker (killed, or stalled past its lease);
  // returns how many were (saturating at 255; 0 once the book is released or s is out of range).
  std::uint32_t count_lost(std::uint64_t s);
  std::uint32_t lost(std::uint64_t s) const;
  // A suspect is a slice that was held by a lost worker: it is handed out alone, so that a
  // second loss can be blamed on it and not on its neighbours.
  bool suspect(std::uint64_t s) const { return lost(s) != 0; }

  // ---- outcomes ----
  // Accepts `o` if slice o.slice is leased in attempt o.attempt and o succeeded with a partial of
  // this job's combiner; its partial (gather bytes are moved out of `o`) is then kept or merged.
  // An awaited outcome with an error code, or with an unusable partial, gives kFailed. Anything
  // else (duplicate, stale attempt, out of range, pending slice) is discarded and counted.
  Offer offer(SliceOutcome& o);
  // Counts outcomes discarded outside offer() (e.g. for a job that is already final).
  void count_discarded(std::uint64_t n) { discarded_ += n; }

  // ---- restore (broker journal) ----
  // Marks a slice that is not yet covered as covered with a partial from the journal (appended
  // to the completion order). For min, max, count and histogram it is not merged: their merged
  // state comes whole from restore_merged(). False if s is out of range or covered already.
  bool restore(std::uint64_t s, const CompactPartial& c, std::string bytes = {});
  // Replaces the merged state of an order-insensitive combiner.
  void restore_merged(Partial merged) { merged_ = std::move(merged); }
  // A final job whose per-slice results were released before the journal was rewritten: as
  // release_results(), with `covered` slices covered (at most total()).
  void restore_released(std::uint64_t covered);
  // The merged state of an order-insensitive combiner, as the journal stores it.
  const Partial& merged_so_far() const { return merged_; }
  // What restore() takes for slice s (a covered slice).
  CompactPartial compact(std::uint64_t s) const;
  const std::string& bytes(std::uint64_t s) const;

  // ---- results ----
  // Slice indices in the order they were accepted.
  const std::vector<std::uint64_t>& completion_order() const { return order_; }
  // The accepted result of slice s (histogram bins are merged on arrival and not kept per slice).
  SliceResult slice_result(std::uint64_t s) const;
  // Appends results from completion_order()[cursor] on: at most max_items, and no more gathered
  // bytes than max_bytes (at least one item). Returns the next cursor.
  std::uint64_t page(std::uint64_t cursor, std::uint64_t max_items, std::size_t max_bytes,
                     std::vector<SliceResult>& out) const;
  // The merge of every accepted partial (for sum and moments folded in slice order). Fails only
  // if two partials cannot be merged.
  Result<Partial> merged() const;
  // kGather: each slice's bytes in slice order (slices without a result give empty bytes).
  std::vector<std::string> gathered() const;

 private:
  using Compact = CompactPartial;
  Offer fail(ErrorCode code, std::string problem);
  Partial expand(std::uint64_t s) const;

  SliceGeometry geo_;
  Combiner combiner_ = Combiner::kSum;
  std::uint64_t total_ = 0;
  std::uint64_t covered_ = 0;
  std::uint64_t leased_ = 0;
  std::uint64_t discarded_ = 0;
  std::vector<SliceState> state_;
  std::vector<std::uint32_t> attempt_;
  std::vector<std::uint8_t> lost_;  // attempts lost with their worker
  std::vector<Compact> partials_;
  std::vector<std::string> bytes_;  // kGather only
  std::vector<std::uint64_t> order_;
  Partial merged_;  // order-insensitive combiners: everything accepted so far
  bool results_released_ = false;
};

}  // namespace zwq::broker
