// HeldReplies: control replies the broker answers later — a Wait until its job finishes, a Fetch
// until new results arrive — each with a deadline (docs/PROTOCOL.md, "Wait", "Fetch").
//
// Socket-free and clock-free: the server asks which held replies are due and sends them.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
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
  bool submit = false;   // a SubmitReq with wait_ms: answered with a SubmitRep, not a WaitRep
  bool existed = false;  // (submit) the job id was known when it was submitted
};

// A WaitManyReq: answered when `awaiting` more of its jobs have finished, or at its deadline.
struct HeldWaitMany {
  ReplyTo to;
  std::vector<std::string> job_ids;  // as listed (final ones too: the reply names them)
  std::uint64_t awaiting = 0;        // listed jobs that must still finish before it is due
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
  // `w.awaiting` must be at least 1 (else answer it at once). Every listed id is indexed, so a
  // job's end costs a lookup, not a scan of the held requests.
  void hold(HeldWaitMany w);

  // Moves the waits on `job_id` to `out` (appending).
  void take_waits(const std::string& job_id, std::vector<HeldWait>& out);
  // Moves the fetches on `job_id` that now have something to return to `out` (appending): those
  // whose cursor is below `available` results, or all of them when `final`.
  void take_fetches(const std::string& job_id, std::uint64_t available, bool final,
                    std::vector<HeldFetch>& out);
  // `job_id` became final: counts it for every held WaitMany listing it (once per listing) and
  // moves those now due to `out` (appending).
  void job_finished(const std::string& job_id, std::vector<HeldWaitMany>& out);
  // Moves every held reply whose deadline is at or before `now`.
  void take_expired(TimePoint now, std::vector<HeldWait>& waits, std::vector<HeldFetch>& fetches,
                    std::vector<HeldWaitMany>& many);
  // Moves everything (at shutdown).
  void take_all(std::vector<HeldWait>& waits, std::vector<HeldFetch>& fetches,
                std::vector<HeldWaitMany>& many);

  // The earliest deadline, if anything is held.
  std::optional<TimePoint> next_deadline() const;
  std::size_t size() const { return waits_.size() + fetches_.size() + many_.size(); }

 private:
  void take_many(std::uint64_t key, std::vector<HeldWaitMany>& out);

  std::vector<HeldWait> waits_;
  std::vector<HeldFetch> fetches_;
  std::unordered_map<std::uint64_t, HeldWaitMany> many_;  // by a key of ours
  // job id -> the held WaitMany listing it (a key once per listing)
  std::unordered_map<std::string, std::vector<std::uint64_t>> many_by_job_;
  std::uint64_t next_key_ = 1;
};

}  // namespace zwq::broker
