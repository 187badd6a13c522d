#include "outcome_batch.hpp"

#include <utility>

namespace zwq::worker {

void OutcomeBatch::add(SliceOutcome outcome) {
  bytes_ += outcome.partial.bytes.size() + outcome.partial.bins.size() * sizeof(std::uint64_t) +
            outcome.message.size();
  items_.push_back(std::move(outcome));
}

bool OutcomeBatch::flush_due(TimePoint now, Clock::duration next) const {
  if (items_.empty()) return false;
  return items_.size() >= max_items_ || bytes_ >= kMaxBytes ||
         now + next - last_flush_ >= kMaxDelay;
}

std::vector<SliceOutcome> OutcomeBatch::take(TimePoint now) {
  std::vector<SliceOutcome> out;
  out.swap(items_);
  items_.reserve(out.size());  // one allocation per batch, not a regrowth every few slices
  bytes_ = 0;
  last_flush_ = now;
  return out;
}

}  // namespace zwq::worker
