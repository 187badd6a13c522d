#include "register_asks.hpp"

namespace zwq::broker {

bool RegisterAsks::due(const std::string& worker_id, TimePoint now) {
  if (last_asked_.size() >= max_ids_ && last_asked_.count(worker_id) == 0) last_asked_.clear();
  auto [it, fresh] = last_asked_.try_emplace(worker_id, now);
  if (!fresh && now - it->second < interval_) return false;
  it->second = now;
  return true;
}

}  // namespace zwq::broker
