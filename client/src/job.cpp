#include <algorithm>
#include <thread>

#include "connection.hpp"
#include "zwq/client.hpp"

namespace zwq {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

using detail::kMaxHold;
// The step of wait() when it reports progress: ~5 updates a second.
constexpr milliseconds kProgressStep{200};
// Pause between two calls to a broker that did not answer (each call already waited its
// request timeout): a restarted broker is found within this much of being back.
constexpr milliseconds kOutageRetry{100};

milliseconds time_left(Clock::time_point deadline) {
  return std::max(milliseconds(0), std::chrono::ceil<milliseconds>(deadline - Clock::now()));
}

std::uint32_t hold_ms(milliseconds hold) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(hold.count(), 0, 1 << 30));
}

}  // namespace

Job::Job(std::shared_ptr<detail::Connection> conn, JobSpec spec, const msg::SubmitRep& rep)
    : conn_(std::move(conn)),
      spec_(std::move(spec)),
      total_slices_(rep.total_slices),
      slice_size_(rep.slice_size),
      existed_(rep.existed) {
  status_.job_id = spec_.job_id;
  status_.kernel = spec_.kernel;
  status_.total = total_slices_;
}

Job::Job(std::shared_ptr<detail::Connection> conn, JobSpec spec, const msg::SubmitItem& item)
    : Job(std::move(conn), std::move(spec),
          msg::SubmitRep{item.job_id, item.total_slices, item.slice_size, item.existed}) {}

Job::Job(Job&&) noexcept = default;
Job& Job::operator=(Job&&) noexcept = default;
Job::~Job() = default;

Error Job::job_error(const JobStatus& status) const {
  if (status.state == JobState::kCancelled) {
    return make_error(ErrorCode::kCancelled,
                      status.error.empty() ? "job " + id() + " was cancelled" : status.error);
  }
  const ErrorCode code =
      status.error_code == ErrorCode::kOk ? ErrorCode::kInternal : status.error_code;
  return make_error(code, status.error.empty() ? "job " + id() + " failed" : status.error);
}

// An unknown job id usually means the broker restarted and lost it; say so when that is the case.
Error Job::lost_job(Error error) {
  if (error.code != ErrorCode::kUnknownJob) return error;
  Status epoch = conn_->check_epoch();
  if (!epoch.ok() && epoch.error().code == ErrorCode::kBrokerRestarted) {
    return make_error(ErrorCode::kBrokerRestarted, "job " + id() + ": " + epoch.error().message);
  }
  return error;
}

std::optional<Error> Job::outage(const Error& error, std::optional<Clock::time_point> deadline) {
  if (error.code != ErrorCode::kUnreachable) return error;
  const auto now = Clock::now();
  if (!down_since_) down_since_ = now;
  const auto down = std::chrono::duration_cast<milliseconds>(now - *down_since_);
  if (down >= conn_->outage_tolerance()) {
    return make_error(ErrorCode::kUnreachable,
                      "job " + id() + ": " + error.message + "; the broker has not answered for " +
                          std::to_string(down.count()) +
                          " ms (if it is restarting with its journal, wait again)");
  }
  if (deadline && now + kOutageRetry >= *deadline) {
    // Out of the caller's time but not of the tolerance: nothing came, as in a quiet spell; the
    // next call goes on counting the same outage (down_since_).
    return make_error(ErrorCode::kTimeout, "job " + id() + ": the broker has not answered for " +
                                               std::to_string(down.count()) + " ms");
  }
  std::this_thread::sleep_for(kOutageRetry);
  return std::nullopt;
}

Result<std::optional<JobResult>> Job::poll(milliseconds max_wait) {
  msg::WaitReq req;
  req.job_id = id();
  req.timeout_ms = hold_ms(max_wait);
  auto rep = conn_->call<msg::WaitRep>(req, milliseconds(req.timeout_ms));
  if (!rep.ok()) {
    // Within the outage tolerance the job is as good as still running (the call itself waited
    // its request timeout, so a caller polling again does not spin).
    auto e = outage(lost_job(rep.error()), Clock::now());
    if (!e || e->code == ErrorCode::kTimeout) return std::optional<JobResult>();
    return *e;
  }
  down_since_.reset();
  return settle(std::move(rep.value().status), rep.value().finished, std::move(rep.value().result));
}

Result<std::optional<JobResult>> Job::settle(JobStatus status, bool finished, JobResult result) {
  status_ = std::move(status);
  if (!finished) return std::optional<JobResult>();
  if (status_.state == JobState::kDone) return std::optional(std::move(result));
  return job_error(status_);
}

Result<JobResult> Job::wait(std::optional<milliseconds> timeout, const ProgressFn& on_progress) {
  const milliseconds step = on_progress ? kProgressStep : kMaxHold;
  const auto start = Clock::now();
  while (true) {
    milliseconds hold = step;
    if (timeout) hold = std::min(hold, time_left(start + *timeout));
    auto r = poll(hold);  // (it rides out a broker that does not answer for a while)
    if (!r.ok()) return r.error();
    if (r.value()) return std::move(*r.value());
    if (on_progress) on_progress(status_);
    if (timeout && Clock::now() - start >= *timeout) {
      return make_error(ErrorCode::kTimeout,
                        "job " + id() + " still running after " + std::to_string(timeout->count()) +
                            " ms (" + std::to_string(status_.done) + "/" +
                            std::to_string(status_.total) +
                            " slices done); it keeps running: wait again or cancel it");
    }
  }
}

JobResult Job::get(std::optional<milliseconds> timeout) {
  auto r = wait(timeout);
  if (!r.ok()) throw JobError(r.error());
  return std::move(r).value();
}

Result<JobStatus> Job::progress() {
  msg::StatusReq req;
  req.job_id = id();
  auto rep = conn_->call<msg::StatusRep>(req);
  if (!rep.ok()) return lost_job(rep.error());
  for (auto& s : rep.value().jobs) {
    if (s.job_id == id()) return status_ = std::move(s);
  }
  return lost_job(make_error(ErrorCode::kUnknownJob, "the broker does not know job " + id()));
}

Result<JobStatus> Job::cancel() {
  msg::CancelReq req;
  req.job_id = id();
  auto rep = conn_->call<msg::CancelRep>(req);
  if (!rep.ok()) return lost_job(rep.error());
  return status_ = std::move(rep.value().status);
}

Status Job::fetch(milliseconds hold) {
  msg::FetchReq req;
  req.job_id = id();
  req.cursor = cursor_;
  req.timeout_ms = hold_ms(hold);
  auto rep = conn_->call<msg::FetchRep>(req, milliseconds(req.timeout_ms));
  if (!rep.ok()) {
    // Read the stream again from its start when the broker is back: a restarted one (journal)
    // lists the slices in another order. seen_ keeps each slice returned once.
    if (rep.error().code == ErrorCode::kUnreachable) cursor_ = 0;
    return lost_job(rep.error());
  }
  down_since_.reset();
  auto& r = rep.value();
  status_ = std::move(r.status);
  cursor_ = std::max(cursor_, r.cursor);
  drained_ = r.items.empty() && job_state_final(status_.state);
  if (seen_.size() < status_.total) seen_.resize(status_.total, false);
  for (auto& item : r.items) {
    if (item.slice < seen_.size()) {
      if (seen_[item.slice]) continue;
      seen_[item.slice] = true;
    }
    pending_.push_back(std::move(item));
  }
  return Status::Ok();
}

Result<std::optional<SliceResult>> Job::next_result(std::optional<milliseconds> timeout) {
  using Next = std::optional<SliceResult>;
  const auto start = Clock::now();
  bool fetched = false;
  while (true) {
    if (pending_head_ < pending_.size()) {
      Next next(std::move(pending_[pending_head_++]));
      if (pending_head_ == pending_.size()) {
        pending_.clear();
        pending_head_ = 0;
      }
      return next;
    }
    // A done job has delivered everything once the cursor reaches its slice count; a failed or
    // cancelled one once a fetch after the end brought nothing new.
    if (status_.state == JobState::kDone && cursor_ >= status_.total) return Next();
    if (drained_) {
      if (status_.state == JobState::kDone) return Next();
      return job_error(status_);
    }
    milliseconds hold = kMaxHold;
    if (timeout) {
      hold = std::min(hold, time_left(start + *timeout));
      if (fetched && hold == milliseconds(0)) {
        return make_error(ErrorCode::kTimeout, "no new result of job " + id() + " within " +
                                                   std::to_string(timeout->count()) + " ms");
      }
    }
    if (Status s = fetch(hold); !s.ok()) {
      std::optional<Clock::time_point> deadline;
      if (timeout) deadline = start + *timeout;
      if (auto e = outage(s.error(), deadline)) return *e;
      continue;
    }
    fetched = true;
  }
}

SliceResults Job::as_completed(std::optional<milliseconds> timeout) {
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  return SliceResults(this, deadline);
}

Result<std::optional<SliceResult>> SliceResults::next() {
  std::optional<milliseconds> left;
  if (deadline_) left = time_left(*deadline_);
  return job_->next_result(left);
}

}  // namespace zwq
