#include "collector.hpp"

#include <bit>
#include <utility>

namespace zwq::broker {

JobCollector::JobCollector(SliceGeometry geometry, Combiner combiner, std::size_t histogram_bins)
    : geo_(geometry),
      combiner_(combiner),
      total_(geometry.slices()),
      state_(total_, SliceState::kPending),
      attempt_(total_, 1),
      lost_(total_, 0),
      partials_(total_),
      merged_(identity_partial(combiner, histogram_bins)) {
  if (combiner_ == Combiner::kGather) bytes_.resize(total_);
  order_.reserve(total_);
}

SliceState JobCollector::state(std::uint64_t s) const {
  return s < state_.size() ? state_[s] : SliceState::kCovered;
}

std::uint32_t JobCollector::attempt(std::uint64_t s) const {
  return s < attempt_.size() ? attempt_[s] : 0;
}

std::uint32_t JobCollector::lease(std::uint64_t s) {
  if (s >= state_.size() || state_[s] != SliceState::kPending) return 0;
  state_[s] = SliceState::kLeased;
  ++leased_;
  return attempt_[s];
}

bool JobCollector::requeue(std::uint64_t s, std::uint32_t attempt) {
  if (!is_leased(s, attempt)) return false;
  state_[s] = SliceState::kPending;
  ++attempt_[s];
  --leased_;
  return true;
}

bool JobCollector::is_leased(std::uint64_t s, std::uint32_t attempt) const {
  return s < state_.size() && state_[s] == SliceState::kLeased && attempt_[s] == attempt;
}

void JobCollector::release_book() {
  std::vector<SliceState>().swap(state_);
  std::vector<std::uint32_t>().swap(attempt_);
  std::vector<std::uint8_t>().swap(lost_);
  leased_ = 0;
}

void JobCollector::release_results() {
  release_book();
  std::vector<Compact>().swap(partials_);
  std::vector<std::string>().swap(bytes_);
  std::vector<std::uint64_t>().swap(order_);
  results_released_ = true;
}

std::uint32_t JobCollector::count_lost(std::uint64_t s) {
  if (s >= lost_.size()) return 0;
  if (lost_[s] < 255) ++lost_[s];
  return lost_[s];
}

std::uint32_t JobCollector::lost(std::uint64_t s) const {
  return s < lost_.size() ? lost_[s] : 0;
}

bool JobCollector::restore(std::uint64_t s, const CompactPartial& c, std::string bytes) {
  if (s >= state_.size() || state_[s] == SliceState::kCovered) return false;
  if (state_[s] == SliceState::kLeased) --leased_;
  state_[s] = SliceState::kCovered;
  partials_[s] = c;
  if (combiner_ == Combiner::kGather) bytes_[s] = std::move(bytes);
  ++covered_;
  order_.push_back(s);
  return true;
}

void JobCollector::restore_released(std::uint64_t covered) {
  release_results();
  covered_ = std::min(covered, total_);
}

CompactPartial JobCollector::compact(std::uint64_t s) const {
  return s < partials_.size() ? partials_[s] : CompactPartial{};
}

const std::string& JobCollector::bytes(std::uint64_t s) const {
  static const std::string kNone;
  return s < bytes_.size() ? bytes_[s] : kNone;
}

Offer JobCollector::fail(ErrorCode code, std::string problem) {
  Offer o;
  o.verdict = Offer::Verdict::kFailed;
  o.code = code;
  o.problem = std::move(problem);
  return o;
}

Offer JobCollector::offer(SliceOutcome& o) {
  const std::uint64_t s = o.slice;
  if (!is_leased(s, o.attempt)) {
    ++discarded_;
    return Offer{};
  }
  if (o.code != ErrorCode::kOk) {
    return fail(o.code, o.message.empty() ? std::string(error_code_name(o.code)) : o.message);
  }
  Partial& p = o.partial;
  if (p.combiner != combiner_) {
    return fail(ErrorCode::kKernelFailed,
                "returned a " + std::string(combiner_name(p.combiner)) + " partial where a " +
                    std::string(combiner_name(combiner_)) + " one was expected");
  }
  Compact c{p.n, p.hi, p.lo};
  switch (combiner_) {
    case Combiner::kSum:
    case Combiner::kMoments:
      break;  // folded in slice order by merged()
    case Combiner::kGather:
      bytes_[s] = std::move(p.bytes);
      break;
    case Combiner::kCount:
      c.lo = std::bit_cast<double>(p.count);
      [[fallthrough]];
    case Combiner::kMin:
    case Combiner::kMax:
    case Combiner::kHistogram:
    case Combiner::kExactSum:
      if (Status st = merge_into(merged_, p); !st.ok()) {
        return fail(ErrorCode::kKernelFailed,
                    "returned a partial that cannot be merged (" + st.error().message + ")");
      }
      break;
  }
  partials_[s] = c;
  state_[s] = SliceState::kCovered;
  --leased_;
  ++covered_;
  order_.push_back(s);
  Offer accepted;
  accepted.verdict = Offer::Verdict::kAccepted;
  return accepted;
}

Partial JobCollector::expand(std::uint64_t s) const {
  Partial p;
  p.combiner = combiner_;
  const Compact& c = partials_[s];
  p.n = c.n;
  switch (combiner_) {
    case Combiner::kCount:
      p.count = std::bit_cast<std::uint64_t>(c.lo);
      break;
    case Combiner::kHistogram:
      break;
    case Combiner::kGather:
      p.bytes = bytes_[s];
      break;
    default:
      p.hi = c.hi;
      p.lo = c.lo;
      break;
  }
  return p;
}

SliceResult JobCollector::slice_result(std::uint64_t s) const {
  SliceResult r;
  r.slice = s;
  if (s >= total_) return r;
  r.first = geo_.slice_first(s);
  r.count = geo_.slice_count(s);
  r.partial = expand(s);
  return r;
}

std::uint64_t JobCollector::page(std::uint64_t cursor, std::uint64_t max_items,
                                 std::size_t max_bytes, std::vector<SliceResult>& out) const {
  std::size_t bytes = 0;
  std::uint64_t i = cursor;
  for (; i < order_.size() && i - cursor < max_items; ++i) {
    const std::uint64_t s = order_[i];
    if (combiner_ == Combiner::kGather) {
      if (i > cursor && bytes + bytes_[s].size() > max_bytes) break;
      bytes += bytes_[s].size();
    }
    out.push_back(slice_result(s));
  }
  return i;
}

Result<Partial> JobCollector::merged() const {
  if (!combiner_is_order_sensitive(combiner_)) {
    Partial m = merged_;
    if (combiner_ == Combiner::kGather) {
      for (std::uint64_t s : order_) m.n += partials_[s].n;
    }
    return m;
  }
  Partial acc = identity_partial(combiner_);
  Partial one = identity_partial(combiner_);
  // Slice order, skipping slices without a result: the same bits for any arrival order.
  std::vector<bool> have(total_, false);
  for (std::uint64_t s : order_) have[s] = true;
  for (std::uint64_t s = 0; s < total_; ++s) {
    if (!have[s]) continue;
    one.n = partials_[s].n;
    one.hi = partials_[s].hi;
    one.lo = partials_[s].lo;
    if (Status st = merge_into(acc, one); !st.ok()) return st.error();
  }
  return acc;
}

std::vector<std::string> JobCollector::gathered() const {
  return combiner_ == Combiner::kGather ? bytes_ : std::vector<std::string>{};
}

}  // namespace zwq::broker
