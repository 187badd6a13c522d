#include "held_replies.hpp"

#include <algorithm>
#include <iterator>

namespace zwq::broker {

namespace {

// Moves the elements of `from` that satisfy `pred` to the end of `to`, keeping the others.
template <typename T, typename Pred>
void move_if(std::vector<T>& from, std::vector<T>& to, Pred pred) {
  auto keep = std::stable_partition(from.begin(), from.end(), [&](const T& x) { return !pred(x); });
  std::move(keep, from.end(), std::back_inserter(to));
  from.erase(keep, from.end());
}

}  // namespace

void HeldReplies::take_waits(const std::string& job_id, std::vector<HeldWait>& out) {
  move_if(waits_, out, [&](const HeldWait& w) { return w.job_id == job_id; });
}

void HeldReplies::take_fetches(const std::string& job_id, std::uint64_t available, bool final,
                               std::vector<HeldFetch>& out) {
  move_if(fetches_, out, [&](const HeldFetch& f) {
    return f.job_id == job_id && (final || f.cursor < available);
  });
}

void HeldReplies::take_expired(TimePoint now, std::vector<HeldWait>& waits,
                               std::vector<HeldFetch>& fetches) {
  move_if(waits_, waits, [&](const HeldWait& w) { return w.deadline <= now; });
  move_if(fetches_, fetches, [&](const HeldFetch& f) { return f.deadline <= now; });
}

void HeldReplies::take_all(std::vector<HeldWait>& waits, std::vector<HeldFetch>& fetches) {
  std::move(waits_.begin(), waits_.end(), std::back_inserter(waits));
  std::move(fetches_.begin(), fetches_.end(), std::back_inserter(fetches));
  waits_.clear();
  fetches_.clear();
}

std::optional<TimePoint> HeldReplies::next_deadline() const {
  std::optional<TimePoint> next;
  for (const auto& w : waits_) {
    if (!next || w.deadline < *next) next = w.deadline;
  }
  for (const auto& f : fetches_) {
    if (!next || f.deadline < *next) next = f.deadline;
  }
  return next;
}

}  // namespace zwq::broker
