// The broker's notion of time: a steady clock read once per poll iteration by the server and
// passed into every socket-free class (which never read a clock themselves).
#pragma once

#include <chrono>
#include <cstdint>

namespace zwq::broker {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Millis = std::chrono::milliseconds;

inline std::uint64_t millis_between(TimePoint from, TimePoint to) {
  if (to <= from) return 0;
  return static_cast<std::uint64_t>(std::chrono::duration_cast<Millis>(to - from).count());
}

}  // namespace zwq::broker
