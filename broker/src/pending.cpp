#include "pending.hpp"

#include <algorithm>
#include <limits>

namespace zwq::broker {

void PendingRanges::reset(std::uint64_t total) {
  clear();
  if (total > 0) ranges_.push_back({0, total});
  size_ = total;
}

void PendingRanges::push_front(std::uint64_t first, std::uint64_t last) {
  if (first >= last) return;
  ranges_.push_back({first, last});
  size_ += last - first;
}

void PendingRanges::clear() {
  std::vector<Range>().swap(ranges_);
  size_ = 0;
}

// Drops covered or leased slices (nothing to hand out) from the front.
void PendingRanges::skip_unavailable(const JobCollector& book) {
  while (!ranges_.empty()) {
    Range& r = ranges_.back();
    while (r.first < r.last && book.state(r.first) != SliceState::kPending) {
      ++r.first;
      --size_;
    }
    if (r.first < r.last) return;
    ranges_.pop_back();
  }
}

std::optional<std::uint64_t> PendingRanges::front(const JobCollector& book) {
  skip_unavailable(book);
  if (ranges_.empty()) return std::nullopt;
  return ranges_.back().first;
}

std::uint64_t PendingRanges::take(std::uint64_t max, JobCollector& book,
                                  std::vector<SliceRun>& runs) {
  constexpr std::uint64_t kMaxRun = std::numeric_limits<std::uint32_t>::max();
  std::uint64_t taken = 0;
  while (taken < max) {
    skip_unavailable(book);
    if (ranges_.empty()) break;
    Range& r = ranges_.back();
    const bool alone = book.suspect(r.first);
    if (alone && taken > 0) break;  // the suspect waits for a dispatch of its own
    const std::uint32_t attempt = book.attempt(r.first);
    const std::uint64_t start = r.first;
    const std::uint64_t limit =
        alone ? start + 1 : std::min({r.last, start + (max - taken), start + kMaxRun});
    while (r.first < limit && book.state(r.first) == SliceState::kPending &&
           book.attempt(r.first) == attempt && (r.first == start || !book.suspect(r.first))) {
      book.lease(r.first);
      ++r.first;
    }
    const std::uint64_t n = r.first - start;
    taken += n;
    size_ -= n;
    if (!runs.empty() && runs.back().attempt == attempt &&
        runs.back().first_slice + runs.back().count == start && runs.back().count + n <= kMaxRun) {
      runs.back().count += static_cast<std::uint32_t>(n);
    } else {
      runs.push_back(SliceRun{start, static_cast<std::uint32_t>(n), attempt});
    }
    if (r.first == r.last) ranges_.pop_back();
    if (alone || (r.first < r.last && book.suspect(r.first))) break;
  }
  return taken;
}

}  // namespace zwq::broker
