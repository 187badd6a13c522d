// RegisterAsks: which heartbeats from a worker the broker does not know get a RegisterAgain
// (docs/PROTOCOL.md, "RegisterAgain"): the first, then at most one per interval for each worker
// id. Such a worker heartbeats about once an interval, so it is asked about as often.
//
// Socket-free and clock-free: the server passes the time in and sends what is due. Bounded:
// beyond max_ids remembered ids (a stream of made-up ids), it forgets them all and starts
// again. Not thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>

#include "time.hpp"

namespace zwq::broker {

class RegisterAsks {
 public:
  explicit RegisterAsks(Millis interval, std::size_t max_ids = 4096)
      : interval_(interval), max_ids_(max_ids) {}

  // True when `worker_id` is to be asked now (and noted as asked at `now`).
  bool due(const std::string& worker_id, TimePoint now);

  // Worker ids remembered now.
  std::size_t size() const { return last_asked_.size(); }

 private:
  Millis interval_;
  std::size_t max_ids_;
  std::unordered_map<std::string, TimePoint> last_asked_;
};

}  // namespace zwq::broker
