// zwq wait, zwq stream: a job submitted before (`zwq submit --no-wait`), by its id.
#include "wait.hpp"

#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "progress.hpp"

namespace zwq::cli {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One wait step: the progress bar's refresh rate, and how quickly Ctrl-C is noticed.
constexpr milliseconds kWaitStep{200};

volatile std::sig_atomic_t g_interrupted = 0;
void on_interrupt(int sig) {
  g_interrupted = sig;
}

// 128 + the signal, as shells report a command that a signal ended: 130 for Ctrl-C, 143 for
// SIGTERM.
int interrupted_exit() {
  return 128 + static_cast<int>(g_interrupted);
}

// SIGINT and SIGTERM set g_interrupted (to the signal) while it lives (no SA_RESTART: a pending
// request notices at once); the previous handlers come back after.
class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptGuard() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct JobArgs {
  std::string job_id;
  bool json = false;
  double timeout = 0;
  std::string broker;
  CLI::Option* timeout_opt = nullptr;
};

// The job named on the command line (a Job shares its client's connection, which outlives the
// client); nullopt after saying why not, with `exit_code` set.
std::optional<Job> attach_or_report(const JobArgs& a, int& exit_code) {
  // The JSON object of a job that could not be waited for, as submit's.
  const auto json_failure = [&](const Error& e) {
    if (!a.json) return;
    Outcome o;
    o.spec.job_id = a.job_id;
    o.attached = true;
    o.state_known = false;
    o.error = e;
    print_json(o);
  };
  ConnectOptions how;
  if (*a.timeout_opt) how.timeout = a.timeout;
  how.on_failure = json_failure;
  auto client = connect_or_report(a.broker, exit_code, how);
  if (!client) return std::nullopt;
  auto job = client->attach(a.job_id);
  if (!job.ok()) {
    json_failure(job.error());
    exit_code = report(job.error());
    return std::nullopt;
  }
  return std::move(job).value();
}

int run_wait(const JobArgs& a) {
  int exit_code = kExitOk;
  auto job = attach_or_report(a, exit_code);
  if (!job) return exit_code;
  Outcome o;
  o.spec = job->spec();
  o.total_slices = job->total_slices();
  o.attached = true;
  WaitOptions w;
  w.json = a.json;
  if (*a.timeout_opt) w.timeout = a.timeout;
  w.cancel_on_interrupt = false;
  const int code = wait_for(*job, w, o, Clock::now());
  // What the job took, as the broker counts it (from its submit), not how long we waited.
  o.seconds = static_cast<double>(o.status.elapsed_ms) / 1000;
  return print_outcome(o, a.json, code);
}

// One slice's partial as a JSON object: where it is, and its combiner's fields.
nlohmann::json slice_json(const SliceResult& s) {
  using nlohmann::json;
  const Partial& p = s.partial;
  json j{{"slice", s.slice}, {"first", s.first}, {"count", s.count}, {"n", p.n}};
  switch (p.combiner) {
    case Combiner::kSum:
      j["value"] = p.hi + p.lo;
      break;
    case Combiner::kExactSum:
      j["value"] = exact_sum_value(p);
      break;
    case Combiner::kMin:
    case Combiner::kMax:
      j["value"] = p.hi;
      break;
    case Combiner::kMoments:
      j["mean"] = p.hi;
      j["m2"] = p.lo;
      break;
    case Combiner::kCount:
      j["value"] = p.count;
      break;
    case Combiner::kHistogram:  // (a slice's bins are merged on arrival, not kept: null)
      put_histogram(j, p.bins);
      break;
    case Combiner::kGather: {
      // The msgpack values the kernel packed one after another, one per element or task.
      json values = json::array();
      std::size_t at = 0;
      try {
        while (at < p.bytes.size()) {
          const std::size_t from = at;
          msgpack::unpack(p.bytes.data(), p.bytes.size(), at);
          values.push_back(json::from_msgpack(p.bytes.begin() + static_cast<std::ptrdiff_t>(from),
                                              p.bytes.begin() + static_cast<std::ptrdiff_t>(at)));
        }
        j["values"] = std::move(values);
      } catch (const std::exception&) {
        j["bytes"] = p.bytes.size();  // not msgpack: only its size
      }
      break;
    }
  }
  return j;
}

int run_stream(const JobArgs& a) {
  int exit_code = kExitOk;
  auto job = attach_or_report(a, exit_code);
  if (!job) return exit_code;
  InterruptGuard guard;
  const auto start = Clock::now();
  for (;;) {
    if (g_interrupted) {
      std::cerr << "zwq: interrupted: stopped streaming; job " << a.job_id << " keeps running\n";
      return interrupted_exit();
    }
    if (*a.timeout_opt && seconds_since(start) >= a.timeout) {
      report(make_error(ErrorCode::kTimeout, "job " + a.job_id + " still running after " +
                                                 format_duration(seconds_since(start)) +
                                                 "; it keeps running"));
      return kExitTimeout;
    }
    // (Within the client's outage tolerance a broker that does not answer gives kTimeout too:
    // a restarting one is asked again.)
    auto next = job->next_result(kWaitStep);
    if (!next.ok()) {
      if (g_interrupted || next.error().code == ErrorCode::kTimeout) continue;
      return report(next.error());
    }
    if (!next.value()) return kExitOk;  // every slice's result was printed
    std::cout << slice_json(*next.value()).dump() << "\n" << std::flush;
  }
}

}  // namespace

int wait_for(Job& job, const WaitOptions& w, Outcome& o, Clock::time_point start) {
  ProgressBar bar(!w.json && ::isatty(STDERR_FILENO));
  InterruptGuard guard;
  int code = kExitOk;
  while (true) {
    if (g_interrupted) {
      if (w.cancel_on_interrupt) {
        auto c = job.cancel();
        o.error = make_error(ErrorCode::kCancelled, "interrupted: job " + job.id() +
                                                        (c.ok() ? " cancelled" : " left running"));
      } else {
        // Not an error of the job's (it was not cancelled): said here, with no code.
        bar.clear();
        std::cerr << "zwq: interrupted: stopped waiting; job " << job.id() << " keeps running\n";
      }
      code = interrupted_exit();
      break;
    }
    auto r = job.poll(kWaitStep);  // (it rides out a broker that does not answer for a while)
    if (r.ok()) {
      if (r.value()) {
        o.result = std::move(*r.value());
        break;
      }
      bar.update(job.last_status());
    } else if (g_interrupted) {
      continue;  // (handled above, whatever the interrupted request gave)
    } else {
      o.error = r.error();
      code = kExitFailed;
      break;
    }
    const double waited = seconds_since(start);
    if (w.timeout && waited >= *w.timeout) {
      const std::string& why = job.last_status().waiting;
      o.error = make_error(ErrorCode::kTimeout,
                           "job " + job.id() + " still running after " + format_duration(waited) +
                               (why.empty() ? "" : " (waiting: " + why + ")") +
                               "; it keeps running (`zwq cancel " + job.id() + "` stops it)");
      code = kExitTimeout;
      break;
    }
  }
  bar.clear();
  o.status = job.last_status();
  o.seconds = seconds_since(start);
  return code;
}

void add_wait_commands(CLI::App& app, Commands& commands) {
  auto wait = std::make_shared<JobArgs>();
  CLI::App* cmd = app.add_subcommand(
      "wait", "Wait for a job submitted before (zwq submit --no-wait) and print its result");
  cmd->add_option("job", wait->job_id, "Job id")->required();
  cmd->add_flag("--json", wait->json, "Print one JSON object");
  wait->timeout_opt = cmd->add_option("--timeout", wait->timeout,
                                      "Give up waiting after SECONDS (the job keeps running)")
                          ->check(kNotNegative);
  add_broker_option(cmd, wait->broker);
  commands.push_back({cmd, [wait] { return run_wait(*wait); }});

  auto stream = std::make_shared<JobArgs>();
  cmd = app.add_subcommand(
      "stream", "Print a job's per-slice results as JSON lines, as the broker accepts them");
  cmd->add_option("job", stream->job_id, "Job id")->required();
  stream->timeout_opt =
      cmd->add_option("--timeout", stream->timeout, "Give up after SECONDS (the job keeps running)")
          ->check(kNotNegative);
  add_broker_option(cmd, stream->broker);
  commands.push_back({cmd, [stream] { return run_stream(*stream); }});
}

}  // namespace zwq::cli
