#include "zwq/client.hpp"

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <numeric>
#include <thread>
#include <unordered_map>

#include "connection.hpp"
#include "zwq/ipc_check.hpp"

namespace zwq {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Jobs in one window of run_many(): kWindowPerWorker per registered worker, at least
// kMinRunManyWindow and at most kMaxRunManyWindow (windows may be finished and not yet collected,
// and the broker remembers 10000 finished jobs by default: see kMaxOpenJobs). A worker holds as
// many one-slice jobs of a known pace as its credit allows (docs/PROTOCOL.md, "Batches"), so a
// small window runs dry before the client sends the next; a large one makes long broker turns.
// Measured with 2 workers, 10^5 one-slice jobs (zwq-bench --only async --runs 3, three rounds,
// window per worker / jobs per SubmitManyReq): 256/128 gave 124-131 k jobs/s, 512/256
// 141-151 k, 512/512 139-161 k, 1024/1024 143-160 k, 2048/512 129-137 k.
constexpr std::size_t kWindowPerWorker = 512;
constexpr std::size_t kMinRunManyWindow = 128;
constexpr std::size_t kMaxRunManyWindow = 4096;
// Windows run_many() submits ahead of the one it collects: with one, the broker and the workers
// ran dry while the client took a window's results and prepared the next one's first request.
// Measured with 2 workers, 10^5 one-slice jobs (zwq-bench --only async --runs 5, five alternating
// rounds): 1 ahead gave a median of 156 k jobs/s, 2 ahead 161 k, 3 ahead 156 k. Fewer when the
// windows are large: at most kMaxOpenJobs jobs are submitted and not collected.
constexpr std::size_t kWindowsAhead = 2;
constexpr std::size_t kMaxOpenJobs = 8192;
// Jobs per SubmitManyReq (at most proto::kMaxBatchJobs). The broker makes a request's jobs in one
// turn of its loop and dispatches them before it serves the next request: smaller requests keep
// that turn short for the workers and other clients, larger ones cost fewer round trips.
constexpr std::size_t kSubmitChunk = 512;
// SubmitManyReqs posted and not yet answered while submit_many() prepares the next: with 1, the
// broker makes the jobs of one request while the client prepares and encodes the next one, where
// the two used to take turns.
constexpr std::size_t kSubmitsInFlight = 1;
// Pause between two calls to a broker that did not answer (as in job.cpp).
constexpr milliseconds kOutageRetry{100};

milliseconds elapsed(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

// How long one Wait round may ask the broker to hold its reply: kMaxHold, less what is left of
// `timeout` after `spent`.
milliseconds round_hold(std::optional<milliseconds> timeout, milliseconds spent) {
  if (!timeout) return detail::kMaxHold;
  return std::min(detail::kMaxHold, std::max(milliseconds(0), *timeout - spent));
}

std::uint32_t hold_ms(milliseconds hold) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(hold.count(), 0, 1 << 30));
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<Client> Client::connect(ClientOptions options) {
  std::string address = options.broker;
  if (address.empty()) {
    if (const char* env = std::getenv("ZWQ_BROKER")) address = env;
  }
  if (address.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no broker address: pass one (ClientOptions::broker, --broker) or set "
                      "ZWQ_BROKER (`zwq local` prints it)");
  }
  // A socket this user may not connect to stays so: say it now, not after a timeout.
  if (const IpcCheck check = check_ipc_path(address); check.lasting()) {
    return make_error(ErrorCode::kUnreachable,
                      "cannot reach the broker at " + address + ": " + check.why);
  }
  auto conn = detail::Connection::open(
      address, options.connect_timeout.value_or(options.request_timeout), options.retries);
  if (!conn.ok()) return conn.error();
  conn.value()->set_outage_tolerance(options.outage_tolerance);
  // No retry here: a wrong address should fail after one timeout, not several.
  auto info = conn.value()->call<msg::InfoRep>(msg::InfoReq{}, std::chrono::milliseconds(0), 0);
  if (!info.ok()) return info.error();
  conn.value()->set_timeout(options.request_timeout);
  if (info.value().version != proto::kVersion) {
    return make_error(ErrorCode::kVersionMismatch,
                      "broker at " + address + " speaks protocol version " +
                          std::to_string(info.value().version) + ", this client " +
                          std::to_string(proto::kVersion));
  }
  conn.value()->set_info(std::move(info).value());
  return Client(std::move(conn).value());
}

Result<JobSpec> Client::prepare(const JobRequest& request) {
  // A kernel the broker did not list when we connected may have been announced since, by a
  // worker with a plugin that registered later: ask the broker once more before refusing.
  const auto listed = [&](const msg::InfoRep& info) {
    return std::find(info.kernels.begin(), info.kernels.end(), request.kernel) !=
           info.kernels.end();
  };
  if (!listed(conn_->info()) && KernelRegistry::builtin().find(request.kernel) == nullptr) {
    auto info = conn_->call<msg::InfoRep>(msg::InfoReq{});
    if (info.ok() && info.value().version == proto::kVersion) {
      conn_->set_info(std::move(info).value());
    }
  }
  const auto& kernels = conn_->info().kernels;
  const auto& specs = conn_->info().kernel_specs;
  auto spec = specs.empty() ? prepare_job(request, kernels) : prepare_job(request, specs);
  if (!spec.ok()) return spec.error();
  // A broker that lists no kernels leaves the decision to its own check.
  if (!kernels.empty() &&
      std::find(kernels.begin(), kernels.end(), spec.value().kernel) == kernels.end()) {
    return make_error(ErrorCode::kUnknownKernel, "the broker at " + address() + " has no kernel '" +
                                                     spec.value().kernel +
                                                     "' (it has: " + join(kernels) + ")");
  }
  return spec;
}

Result<Job> Client::submit(const JobRequest& request) {
  auto spec = prepare(request);
  if (!spec.ok()) return spec.error();
  msg::SubmitReq req;
  req.job = spec.value();
  auto rep = conn_->call<msg::SubmitRep>(req);
  if (!rep.ok()) return rep.error();
  return Job(conn_, std::move(spec).value(), rep.value());
}

Result<JobResult> Client::run(const JobRequest& request, std::optional<milliseconds> timeout) {
  const auto start = Clock::now();
  auto spec = prepare(request);
  if (!spec.ok()) return spec.error();
  msg::SubmitReq req;
  req.job = spec.value();
  const milliseconds hold = round_hold(timeout, milliseconds(0));
  req.wait_ms = std::max<std::uint32_t>(1, hold_ms(hold));  // 0 would answer at once
  auto rep = conn_->call<msg::SubmitRep>(req, milliseconds(req.wait_ms));
  if (!rep.ok()) return rep.error();
  Job job(conn_, std::move(spec).value(), rep.value());
  auto settled = job.settle(std::move(rep.value().status), rep.value().finished,
                            std::move(rep.value().result));
  if (!settled.ok()) return settled.error();
  if (settled.value()) return std::move(*settled.value());
  // Still running (or a broker that predates wait_ms): wait for the rest of the timeout.
  std::optional<milliseconds> left;
  if (timeout) left = std::max(milliseconds(0), *timeout - elapsed(start));
  return job.wait(left);
}

std::vector<Result<Job>> Client::submit_many(const std::vector<JobRequest>& requests) {
  std::vector<Result<Job>> out;
  out.reserve(requests.size());
  // One SubmitManyReq: its prepared specs, where their answers go in `out`, and the request as
  // posted. The next one is prepared and posted while the broker works on this one.
  struct Chunk {
    msg::SubmitManyReq req;
    std::vector<std::size_t> slots;
    detail::Connection::Posted posted;
  };
  std::deque<Chunk> in_flight;
  auto settle = [&](Chunk& c) {
    auto rep = conn_->collect<msg::SubmitManyRep>(c.posted);
    for (std::size_t i = 0; i < c.slots.size(); ++i) {
      Result<Job>& slot = out[c.slots[i]];
      if (!rep.ok()) {
        slot = rep.error();
      } else if (rep.value().items.size() != c.slots.size()) {
        slot = make_error(ErrorCode::kInternal, "the broker at " + address() + " answered " +
                                                    std::to_string(rep.value().items.size()) +
                                                    " of " + std::to_string(c.slots.size()) +
                                                    " submitted jobs");
      } else if (const msg::SubmitItem& item = rep.value().items[i]; item.code != ErrorCode::kOk) {
        slot = make_error(item.code, item.message.empty() ? "the broker refused job " + item.job_id
                                                          : item.message);
      } else {
        slot = Job(conn_, std::move(c.req.jobs[i]), item);
      }
    }
  };
  Chunk next;
  auto post = [&] {
    if (next.req.jobs.empty()) return;
    next.posted = conn_->post(next.req);
    in_flight.push_back(std::move(next));
    next = Chunk{};
    if (in_flight.size() > kSubmitsInFlight) {
      settle(in_flight.front());
      in_flight.pop_front();
    }
  };
  for (const JobRequest& request : requests) {
    auto spec = prepare(request);
    if (!spec.ok()) {
      out.emplace_back(spec.error());
      continue;
    }
    next.slots.push_back(out.size());
    out.emplace_back(make_error(ErrorCode::kInternal, "not submitted"));  // set by settle()
    next.req.jobs.push_back(std::move(spec).value());
    if (next.req.jobs.size() == kSubmitChunk) post();
  }
  post();
  for (Chunk& c : in_flight) settle(c);
  return out;
}

struct Client::WaitRound {
  detail::Connection::Posted posted;
  std::unordered_map<std::string, std::vector<std::size_t>> by_id;  // job id -> indices in jobs
};

Client::WaitRound Client::post_wait_round(std::span<Job> jobs,
                                          const std::vector<std::size_t>& pending,
                                          milliseconds hold) {
  WaitRound round;
  msg::WaitManyReq req;
  const std::size_t n = std::min<std::size_t>(pending.size(), proto::kMaxBatchJobs);
  for (std::size_t k = 0; k < n; ++k) {
    const Job& job = jobs[pending[k]];
    auto& slots = round.by_id[job.id()];
    if (slots.empty()) req.job_ids.push_back(job.id());
    slots.push_back(pending[k]);
  }
  req.timeout_ms = hold_ms(hold);
  round.posted = conn_->post(req, milliseconds(req.timeout_ms));
  return round;
}

Status Client::finish_wait_round(WaitRound& round, std::span<Job> jobs,
                                 std::vector<std::size_t>& pending,
                                 std::vector<std::optional<Result<JobResult>>>& out) {
  auto rep = conn_->collect<msg::WaitManyRep>(round.posted);
  if (!rep.ok()) return rep.error();
  for (msg::WaitItem& item : rep.value().items) {
    auto it = round.by_id.find(item.job_id);
    if (it == round.by_id.end()) continue;  // not asked for: ignore
    for (const std::size_t i : it->second) {
      Job& job = jobs[i];
      if (item.code != ErrorCode::kOk) {
        out[i] = job.lost_job(make_error(item.code, item.message));
        continue;
      }
      auto settled = job.settle(item.status, true, item.result);
      if (!settled.ok()) {
        out[i] = settled.error();
      } else if (settled.value()) {
        out[i] = std::move(*settled.value());
      }
    }
  }
  std::erase_if(pending, [&](std::size_t i) { return out[i].has_value(); });
  return Status::Ok();
}

Status Client::wait_round(std::span<Job> jobs, std::vector<std::size_t>& pending, milliseconds hold,
                          std::vector<std::optional<Result<JobResult>>>& out) {
  WaitRound round = post_wait_round(jobs, pending, hold);
  return finish_wait_round(round, jobs, pending, out);
}

std::vector<Result<JobResult>> Client::wait_all(std::span<Job> jobs,
                                                std::optional<milliseconds> timeout) {
  return wait_all_from(nullptr, jobs, timeout);
}

std::vector<Result<JobResult>> Client::wait_all_from(WaitRound* first, std::span<Job> jobs,
                                                     std::optional<milliseconds> timeout) {
  std::vector<std::optional<Result<JobResult>>> out(jobs.size());
  std::vector<std::size_t> pending(jobs.size());
  std::iota(pending.begin(), pending.end(), std::size_t{0});
  const auto start = Clock::now();
  std::optional<Clock::time_point> down_since;
  while (!pending.empty()) {
    const milliseconds hold = round_hold(timeout, elapsed(start));
    Status st = first != nullptr ? finish_wait_round(*first, jobs, pending, out)
                                 : wait_round(jobs, pending, hold, out);
    first = nullptr;
    const bool timed_out = timeout && elapsed(start) >= *timeout;
    if (st.ok()) {
      down_since.reset();
      if (!timed_out) continue;
    } else if (st.error().code == ErrorCode::kUnreachable && !timed_out) {
      // The broker may be restarting (with a journal it finds the jobs again): ask again
      // within the outage tolerance, as Job::wait() does.
      const auto now = Clock::now();
      if (!down_since) down_since = now;
      if (now - *down_since < conn_->outage_tolerance()) {
        std::this_thread::sleep_for(kOutageRetry);
        continue;
      }
    }
    for (const std::size_t i : pending) {
      if (st.ok()) {
        out[i] =
            make_error(ErrorCode::kTimeout, "job " + jobs[i].id() + " still running after " +
                                                std::to_string(timeout->count()) +
                                                " ms; it keeps running: wait again or cancel it");
      } else {
        out[i] = st.error();
      }
    }
    break;
  }
  std::vector<Result<JobResult>> results;
  results.reserve(out.size());
  for (auto& r : out) results.push_back(std::move(*r));
  return results;
}

std::size_t Client::run_many_window(std::size_t workers) {
  return std::clamp(workers * kWindowPerWorker, kMinRunManyWindow, kMaxRunManyWindow);
}

std::size_t Client::run_many_ahead(std::size_t window) {
  return std::clamp<std::size_t>(kMaxOpenJobs / std::max<std::size_t>(window, 1), 2,
                                 kWindowsAhead + 1) -
         1;
}

std::vector<Result<JobResult>> Client::run_many(const std::vector<JobRequest>& requests,
                                                std::optional<milliseconds> timeout) {
  std::vector<Result<JobResult>> out;
  out.reserve(requests.size());
  // A window of jobs: submitted, then waited for while the next one is submitted.
  struct Window {
    std::vector<Result<Job>> submitted;
    std::vector<Job> jobs;           // the accepted ones, moved out of `submitted`
    std::vector<std::size_t> where;  // index in `submitted` of each of `jobs`
  };
  auto workers_now = workers();
  const std::size_t window = run_many_window(workers_now.ok() ? workers_now.value().size() : 0);
  auto submit_window = [&](std::size_t first) {
    const std::size_t end = std::min(requests.size(), first + window);
    std::vector<JobRequest> part(requests.begin() + static_cast<std::ptrdiff_t>(first),
                                 requests.begin() + static_cast<std::ptrdiff_t>(end));
    Window w{submit_many(part), {}, {}};
    for (std::size_t i = 0; i < w.submitted.size(); ++i) {
      if (w.submitted[i].ok()) {
        w.jobs.push_back(std::move(w.submitted[i]).value());
        w.where.push_back(i);
      }
    }
    return w;
  };
  auto collect = [&](Window& w, WaitRound* posted) {
    auto results = wait_all_from(posted, w.jobs, timeout);
    std::vector<std::optional<Result<JobResult>>> ordered(w.submitted.size());
    for (std::size_t k = 0; k < w.where.size(); ++k) ordered[w.where[k]] = std::move(results[k]);
    for (std::size_t i = 0; i < ordered.size(); ++i) {
      out.push_back(ordered[i] ? std::move(*ordered[i])
                               : Result<JobResult>(w.submitted[i].error()));
    }
  };
  // Windows submitted and not yet collected, each with its WaitMany: it goes out with the
  // window, so that the broker answers it as soon as the window is done and the answer waits for
  // the client, not the client for the answer. (With a timeout of 0 the answer would come at
  // once: asked when the window is collected.)
  const std::size_t ahead = run_many_ahead(window);
  struct Open {
    Window w;
    std::optional<WaitRound> posted;
  };
  std::deque<Open> open;
  std::size_t next_first = 0;
  auto open_next = [&] {
    if (next_first >= requests.size()) return;
    Open o{submit_window(next_first), std::nullopt};
    next_first += o.w.submitted.size();
    open.push_back(std::move(o));
  };
  auto post_wait = [&](Open& o) {
    if (o.posted || o.w.jobs.empty() || (timeout && *timeout <= milliseconds(0))) return;
    std::vector<std::size_t> all(o.w.jobs.size());
    std::iota(all.begin(), all.end(), std::size_t{0});
    o.posted = post_wait_round(o.w.jobs, all, round_hold(timeout, milliseconds(0)));
  };
  for (std::size_t k = 0; k < ahead; ++k) {
    open_next();
    if (!open.empty()) post_wait(open.back());
  }
  while (!open.empty()) {
    open_next();
    post_wait(open.back());
    collect(open.front().w, open.front().posted ? &*open.front().posted : nullptr);
    open.pop_front();
  }
  return out;
}

Result<std::vector<JobStatus>> Client::status(const std::string& job_id) {
  msg::StatusReq req;
  req.job_id = job_id;
  auto rep = conn_->call<msg::StatusRep>(req);
  if (!rep.ok()) return rep.error();
  return std::move(rep.value().jobs);
}

Result<Job> Client::attach(const std::string& job_id) {
  if (job_id.empty()) return make_error(ErrorCode::kInvalidArgument, "attach needs a job id");
  auto jobs = status(job_id);
  if (!jobs.ok()) return jobs.error();
  for (JobStatus& st : jobs.value()) {
    if (st.job_id != job_id) continue;
    JobSpec spec;
    spec.job_id = job_id;
    spec.kernel = st.kernel;
    Job job(conn_, std::move(spec), msg::SubmitRep{job_id, st.total, 0, true});
    job.status_ = std::move(st);
    return job;
  }
  return make_error(ErrorCode::kUnknownJob, "no job with id '" + job_id + "'");
}

Result<std::vector<WorkerStatus>> Client::workers() {
  auto rep = conn_->call<msg::WorkersRep>(msg::WorkersReq{});
  if (!rep.ok()) return rep.error();
  return std::move(rep.value().workers);
}

Result<JobStatus> Client::cancel(const std::string& job_id) {
  msg::CancelReq req;
  req.job_id = job_id;
  auto rep = conn_->call<msg::CancelRep>(req);
  if (!rep.ok()) return rep.error();
  return std::move(rep.value().status);
}

Status Client::shutdown_broker() {
  auto rep = conn_->call<msg::ShutdownRep>(msg::ShutdownReq{});
  if (!rep.ok()) return rep.error();
  return Status::Ok();
}

const msg::InfoRep& Client::info() const {
  return conn_->info();
}
const std::string& Client::address() const {
  return conn_->endpoint();
}

}  // namespace zwq
