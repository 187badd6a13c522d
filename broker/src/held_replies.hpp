// HeldReplies: control replies the broker answers later — a Wait until its job finishes, a Fetch
// until new results arrive — each with a deadline (docs/PROTOCOL.md, "Wait", "Fetch").
//
// Socket-free and clock-free: the server asks which held replies are due and sends them.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "time.hpp"

namespace zwq::broker {

// Where a control reply goes: the client's ROUTER identity and its request number.
struct ReplyTo {
  std::string identity;
  std::uint64_t corr = 0;
};

struct HeldWait {
  ReplyTo to;
  std::string job_id;
  TimePoint deadline{};
};

struct HeldFetch {
  ReplyTo to;
  std::string job_id;
  std::uint64_t cursor = 0;
  std::uint32_t max_items = 0;
  TimePoint deadline{};
};

class HeldReplies {
 public:
  void hold(HeldWait w) { waits_.push_back(std::move(w)); }
  void hold(HeldFetch f) { fetches_.push_back(std::move(f)); }

  // Moves the waits on `job_id` to `out` (appending).
  void take_waits(const std::string& job_id, std::vector<HeldWait>& out);
  // Moves the fetches on `job_id` that now have something to return to `out` (appending): those
  // whose cursor is below `available` results, or all of them when `final`.
  void take_fetches(const std::string& job_id, std::uint64_t available, bool final,
                    std::vector<HeldFetch>& out);
  // Moves every held reply whose deadline is at or before `now`.
  void take_expired(TimePoint now, std::vector<HeldWait>& waits, std::vector<HeldFetch>& fetches);
  // Moves everything (at shutdown).
  void take_all(std::vector<HeldWait>& waits, std::vector<HeldFetch>& fetches);

  // The earliest deadline, if anything is held.
  std::optional<TimePoint> next_deadline() const;
  std::size_t size() const { return waits_.size() + fetches_.size(); }

 private:
  std::vector<HeldWait> waits_;
  std::vector<HeldFetch> fetches_;
};

}  // namespace zwq::broker
