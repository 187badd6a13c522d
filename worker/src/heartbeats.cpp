#include "heartbeats.hpp"

#include <algorithm>

#include "zwq/protocol.hpp"

namespace zwq::worker {

void Heartbeats::start(TimePoint now, std::uint32_t interval_ms, std::uint32_t liveness) {
  configure(interval_ms, liveness);
  last_sent_ = now;
  last_broker_ = now;
  last_loop_ = now;
}

void Heartbeats::loop_ran(TimePoint now) {
  if (last_loop_ != TimePoint{} && now - last_loop_ > 2 * interval_) {
    last_broker_ += now - last_loop_;
  }
  last_loop_ = now;
}

void Heartbeats::configure(std::uint32_t interval_ms, std::uint32_t liveness) {
  interval_ = Ms(interval_ms != 0 ? interval_ms : proto::kDefaultHeartbeatMs);
  liveness_ = liveness != 0 ? liveness : proto::kDefaultLiveness;
}

Ms Heartbeats::until_next_deadline(TimePoint now) const {
  const auto next = std::min(last_sent_ + overdue(), last_broker_ + dead_after());
  if (next <= now) return Ms(0);
  // Round up so that a wake-up at the deadline finds it passed.
  return std::chrono::ceil<Ms>(next - now);
}

Ms Backoff::next() {
  const Ms now = delay_;
  delay_ = std::min(delay_ * 2, kMax);
  return now;
}

}  // namespace zwq::worker
