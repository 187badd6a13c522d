// zwq status, workers, cancel, shutdown: what the broker is doing; stopping a job or the broker.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli.hpp"

namespace zwq::cli {

namespace {

using nlohmann::json;

struct StatusArgs {
  std::string job_id;
  bool json = false;
  std::string broker;
  double timeout = 0;                  // --timeout: seconds to reach the broker in
  CLI::Option* timeout_opt = nullptr;  // (given or not)
};

// --timeout, and the options every command here shares.
void add_common_options(CLI::App* cmd, StatusArgs& a) {
  a.timeout_opt = cmd->add_option("--timeout", a.timeout,
                                  "Give up on a broker that does not answer within SECONDS")
                      ->check(kNotNegative);
  add_broker_option(cmd, a.broker);
}

json to_json(const JobStatus& s) {
  return json{{"job_id", s.job_id},
              {"kernel", s.kernel},
              {"state", std::string(job_state_name(s.state))},
              {"total", s.total},
              {"done", s.done},
              {"inflight", s.inflight},
              {"retried", s.retried},
              {"discarded", s.discarded},
              {"elapsed_ms", s.elapsed_ms},
              {"error_code", std::string(error_code_name(s.error_code))},
              {"error", s.error},
              {"lease_ms", s.lease_ms},
              {"waiting", s.waiting},
              {"ahead", s.ahead}};
}

json to_json(const WorkerStatus& w) {
  return json{{"worker_id", w.worker_id},
              {"host", w.host},
              {"memory", w.memory},
              {"pid", w.pid},
              {"state", w.state},
              {"credit", w.credit},
              {"inflight", w.inflight},
              {"slices_done", w.slices_done},
              {"heartbeat_age_ms", w.heartbeat_age_ms}};
}

// A queued job that a worker could take says how many older jobs go first (s.ahead, which the
// broker works out from the jobs its workers serve).
std::vector<std::string> job_row(const JobStatus& s) {
  std::string note = s.waiting.empty() ? s.error : "waiting: " + s.waiting;
  if (note.empty() && s.state == JobState::kQueued && s.inflight == 0 && s.ahead != 0) {
    note = "behind " + std::to_string(s.ahead) + " older job" + (s.ahead == 1 ? "" : "s") +
           " (the oldest goes first)";
  }
  return {s.job_id,
          s.kernel,
          std::string(job_state_name(s.state)),
          std::to_string(s.done) + "/" + std::to_string(s.total),
          std::to_string(s.inflight),
          std::to_string(s.retried),
          std::to_string(s.discarded),
          format_duration(static_cast<double>(s.elapsed_ms) / 1000),
          note};
}

std::vector<std::string> worker_row(const WorkerStatus& w) {
  return {w.worker_id,
          w.host,
          std::to_string(w.pid),
          w.state,
          std::to_string(w.inflight) + "/" + std::to_string(w.credit),
          std::to_string(w.slices_done),
          format_duration(static_cast<double>(w.heartbeat_age_ms) / 1000)};
}

// With --json and one job id, the object of a job whose state is unknown, as `zwq wait --json`
// prints it. (A listing prints nothing on stdout when it fails: `[]` would say "no jobs".)
void print_unknown_job(const StatusArgs& a, const Error& e) {
  if (!a.json || a.job_id.empty()) return;
  std::cout << json{{"job_id", a.job_id}, {"state", nullptr}, {"error", e.to_string()}}.dump()
            << std::endl;
}

std::optional<Client> connect_for(const StatusArgs& a, int& exit_code) {
  ConnectOptions how;
  if (*a.timeout_opt) how.timeout = a.timeout;
  how.bounds_requests = true;
  how.on_failure = [&a](const Error& e) { print_unknown_job(a, e); };
  return connect_or_report(a.broker, exit_code, how);
}

int run_status(const StatusArgs& a) {
  int exit_code = kExitOk;
  auto client = connect_for(a, exit_code);
  if (!client) return exit_code;
  auto jobs = client->status(a.job_id);
  if (!jobs.ok()) {
    print_unknown_job(a, jobs.error());
    return report(jobs.error());
  }
  if (a.json) {
    json out = json::array();
    for (const auto& s : jobs.value()) out.push_back(to_json(s));
    std::cout << (a.job_id.empty() || out.empty() ? out.dump() : out[0].dump()) << std::endl;
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : jobs.value()) rows.push_back(job_row(s));
  print_table(
      {"JOB", "KERNEL", "STATE", "DONE", "INFLIGHT", "RETRIED", "DISCARDED", "ELAPSED", "NOTE"},
      rows);
  return kExitOk;
}

int run_workers(const StatusArgs& a) {
  int exit_code = kExitOk;
  auto client = connect_for(a, exit_code);
  if (!client) return exit_code;
  auto workers = client->workers();
  if (!workers.ok()) return report(workers.error());
  if (a.json) {
    json out = json::array();
    for (const auto& w : workers.value()) out.push_back(to_json(w));
    std::cout << out.dump() << std::endl;
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : workers.value()) rows.push_back(worker_row(w));
  print_table({"WORKER", "HOST", "PID", "STATE", "INFLIGHT", "SLICES", "HEARTBEAT"}, rows);
  return kExitOk;
}

int run_cancel(const StatusArgs& a) {
  int exit_code = kExitOk;
  auto client = connect_for(a, exit_code);
  if (!client) return exit_code;
  auto status = client->cancel(a.job_id);
  if (!status.ok()) {
    print_unknown_job(a, status.error());
    return report(status.error());
  }
  if (a.json) {
    std::cout << to_json(status.value()).dump() << std::endl;
  } else {
    std::cout << "job " << status.value().job_id << ": " << job_state_name(status.value().state)
              << "\n";
  }
  return kExitOk;
}

int run_shutdown(const StatusArgs& a) {
  int exit_code = kExitOk;
  auto client = connect_for(a, exit_code);
  if (!client) return exit_code;
  if (Status s = client->shutdown_broker(); !s.ok()) return report(s.error());
  return kExitOk;
}

}  // namespace

void add_status_commands(CLI::App& app, Commands& commands) {
  auto status = std::make_shared<StatusArgs>();
  CLI::App* cmd = app.add_subcommand("status", "Show the broker's jobs (or one job)");
  cmd->add_option("job", status->job_id, "Job id (default: all jobs)");
  cmd->add_flag("--json", status->json, "Print JSON");
  add_common_options(cmd, *status);
  commands.push_back({cmd, [status] { return run_status(*status); }});

  auto workers = std::make_shared<StatusArgs>();
  cmd = app.add_subcommand("workers", "Show the workers registered with the broker");
  cmd->add_flag("--json", workers->json, "Print JSON");
  add_common_options(cmd, *workers);
  commands.push_back({cmd, [workers] { return run_workers(*workers); }});

  auto cancel = std::make_shared<StatusArgs>();
  cmd = app.add_subcommand("cancel", "Cancel a job");
  cmd->add_option("job", cancel->job_id, "Job id")->required();
  cmd->add_flag("--json", cancel->json, "Print the job's status as JSON");
  add_common_options(cmd, *cancel);
  commands.push_back({cmd, [cancel] { return run_cancel(*cancel); }});

  auto shutdown = std::make_shared<StatusArgs>();
  cmd = app.add_subcommand("shutdown", "Stop the broker (its workers exit too)");
  add_common_options(cmd, *shutdown);
  commands.push_back({cmd, [shutdown] { return run_shutdown(*shutdown); }});
}

}  // namespace zwq::cli
