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

void HeldReplies::hold(HeldWaitMany w) {
  const std::uint64_t key = next_key_++;
  for (const std::string& id : w.job_ids) many_by_job_[id].push_back(key);
  many_.emplace(key, std::move(w));
}

// Removes the held WaitMany `key` and its index entries, appending it to `out`.
void HeldReplies::take_many(std::uint64_t key, std::vector<HeldWaitMany>& out) {
  auto it = many_.find(key);
  if (it == many_.end()) return;
  for (const std::string& id : it->second.job_ids) {
    auto idx = many_by_job_.find(id);
    if (idx == many_by_job_.end()) continue;
    std::erase(idx->second, key);
    if (idx->second.empty()) many_by_job_.erase(idx);
  }
  out.push_back(std::move(it->second));
  many_.erase(it);
}

void HeldReplies::job_finished(const std::string& job_id, std::vector<HeldWaitMany>& out) {
  auto idx = many_by_job_.find(job_id);
  if (idx == many_by_job_.end()) return;
  std::vector<std::uint64_t> due;
  for (const std::uint64_t key : idx->second) {
    HeldWaitMany& w = many_.at(key);
    if (w.awaiting > 0 && --w.awaiting == 0) due.push_back(key);
  }
  for (const std::uint64_t key : due) take_many(key, out);
}

void HeldReplies::take_expired(TimePoint now, std::vector<HeldWait>& waits,
                               std::vector<HeldFetch>& fetches, std::vector<HeldWaitMany>& many) {
  move_if(waits_, waits, [&](const HeldWait& w) { return w.deadline <= now; });
  move_if(fetches_, fetches, [&](const HeldFetch& f) { return f.deadline <= now; });
  std::vector<std::uint64_t> due;
  for (const auto& [key, w] : many_) {
    if (w.deadline <= now) due.push_back(key);
  }
  std::sort(due.begin(), due.end());  // in the order they were held
  for (const std::uint64_t key : due) take_many(key, many);
}

void HeldReplies::take_all(std::vector<HeldWait>& waits, std::vector<HeldFetch>& fetches,
                           std::vector<HeldWaitMany>& many) {
  std::move(waits_.begin(), waits_.end(), std::back_inserter(waits));
  std::move(fetches_.begin(), fetches_.end(), std::back_inserter(fetches));
  waits_.clear();
  fetches_.clear();
  std::vector<std::uint64_t> keys;
  for (const auto& [key, w] : many_) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (const std::uint64_t key : keys) take_many(key, many);
}

std::optional<TimePoint> HeldReplies::next_deadline() const {
  std::optional<TimePoint> next;
  for (const auto& w : waits_) {
    if (!next || w.deadline < *next) next = w.deadline;
  }
  for (const auto& f : fetches_) {
    if (!next || f.deadline < *next) next = f.deadline;
  }
  for (const auto& [key, w] : many_) {
    if (!next || w.deadline < *next) next = w.deadline;
  }
  return next;
}

}  // namespace zwq::broker
