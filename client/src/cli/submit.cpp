// zwq submit: run one job and print its result.
#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli.hpp"
#include "submit_output.hpp"
#include "wait.hpp"

namespace zwq::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct SubmitArgs {
  std::string kernel;
  std::string input, input2, output;
  std::string dtype, dtype2, output_dtype;
  std::uint64_t offset = 0;
  std::string range;
  std::uint64_t count = 0;
  std::uint64_t slice = 0;
  std::vector<std::string> params;
  std::string job_id;
  bool json = false;
  bool no_wait = false;
  bool here = false;  // keep the job on this host's workers (keep_here)
  double timeout = 0;
  std::string broker;
  CLI::Option* count_opt = nullptr;
  CLI::Option* timeout_opt = nullptr;
};

Result<DatasetRef> dataset_arg(const std::string& uri, const std::string& dtype, const char* flag) {
  DatasetRef ref;
  ref.uri = uri;
  if (!dtype.empty()) {
    auto t = parse_dtype(dtype);
    if (!t)
      return make_error(ErrorCode::kInvalidArgument,
                        std::string("unknown dtype '") + dtype + "' for " + flag);
    ref.dtype = *t;
  }
  return ref;
}

// "A:B" -> first A, count B - A; "A:" -> first A, count to the end.
Status parse_range(const std::string& text, JobRequest& req) {
  const auto colon = text.find(':');
  auto bad = [&] {
    return make_error(ErrorCode::kInvalidArgument, "--range '" + text + "' is not A:B with A <= B");
  };
  // (stoull would take "-5" as 2^64 - 5.)
  if (colon == std::string::npos || colon == 0 || text.find('-') != std::string::npos) return bad();
  try {
    std::size_t used = 0;
    const std::string a = text.substr(0, colon), b = text.substr(colon + 1);
    req.first = std::stoull(a, &used);
    if (used != a.size()) return bad();
    if (b.empty()) return Status::Ok();
    const std::uint64_t end = std::stoull(b, &used);
    if (used != b.size() || end < req.first) return bad();
    req.count = end - req.first;
  } catch (const std::exception&) {
    return bad();
  }
  return Status::Ok();
}

Result<JobRequest> build_request(const SubmitArgs& a) {
  JobRequest req;
  req.kernel = a.kernel;
  req.slice_size = a.slice;
  req.job_id = a.job_id;
  const struct {
    const std::string& uri;
    const std::string& dtype;
    const char* flag;
    DatasetRef& ref;
  } datasets[] = {{a.input, a.dtype, "--dtype", req.input},
                  {a.input2, a.dtype2, "--dtype2", req.input2},
                  {a.output, a.output_dtype, "--output-dtype", req.output}};
  for (const auto& d : datasets) {
    if (d.uri.empty()) continue;
    auto ref = dataset_arg(d.uri, d.dtype, d.flag);
    if (!ref.ok()) return ref.error();
    d.ref = ref.value();
  }
  req.input.byte_offset = a.offset;
  req.here = a.here;
  if (!a.range.empty()) {
    if (*a.count_opt) {
      return make_error(ErrorCode::kInvalidArgument, "give --range or --count, not both");
    }
    if (Status s = parse_range(a.range, req); !s.ok()) return s.error();
  } else if (*a.count_opt) {
    req.count = a.count;
  }
  for (const auto& text : a.params) {
    if (Status s = req.set_param(text); !s.ok()) return s.error();
  }
  return req;
}

// A bare name is a file path; when /dev/shm has an array of that name, the user meant shm:NAME.
// A file that workers elsewhere do not find may be on this host's disk only: --here keeps it.
Error with_hint(Error e, const SubmitArgs& a) {
  if (e.code != ErrorCode::kDatasetMissing || a.input.empty()) return e;
  if (a.input.find_first_of(":/") == std::string::npos &&
      ::access(("/dev/shm/" + a.input).c_str(), F_OK) == 0) {
    e.message += " (did you mean --input shm:" + a.input + "?)";
  } else if (!a.here && e.message.find(" on worker ") != std::string::npos &&
             !host_local(a.input)) {
    e.message +=
        " (if the file is on this host's local disk only, --here keeps the job on this "
        "host's workers)";
  }
  return e;
}

int run_submit(const SubmitArgs& a) {
  auto req = build_request(a);
  if (!req.ok()) return usage_error(req.error().message);
  // With --json, a job that could not be submitted still gets its one object.
  const auto json_failure = [&](const Error& e) {
    if (!a.json) return;
    Outcome o;
    o.spec.kernel = a.kernel;
    o.spec.job_id = a.job_id;
    o.status.state = JobState::kFailed;
    o.error = e;
    print_json(o);
  };
  int exit_code = kExitOk;
  ConnectOptions how;
  if (*a.timeout_opt) how.timeout = a.timeout;
  how.on_failure = json_failure;
  auto client = connect_or_report(a.broker, exit_code, how);
  if (!client) return exit_code;
  const auto start = Clock::now();
  auto job = client->submit(req.value());
  if (!job.ok()) job = with_hint(job.error(), a);
  if (!job.ok()) {
    json_failure(job.error());
    return report(job.error());
  }
  Outcome o;
  o.spec = job.value().spec();
  o.total_slices = job.value().total_slices();
  if (a.no_wait) {
    o.status = job.value().last_status();
    if (a.json) {
      print_json(o);
    } else {
      std::cout << job.value().id() << "\n";
    }
    return kExitOk;
  }
  WaitOptions w;
  w.json = a.json;
  if (*a.timeout_opt) w.timeout = a.timeout;
  const int code = wait_for(job.value(), w, o, start);
  if (o.error) o.error = with_hint(*o.error, a);
  return print_outcome(o, a.json, code);
}

}  // namespace

void add_submit_command(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<SubmitArgs>();
  CLI::App* cmd = app.add_subcommand("submit",
                                     "Run a kernel over a dataset (or a range of "
                                     "points) and print its result");
  cmd->add_option("--kernel,-k", a->kernel, "Kernel name (see `zwq kernels`)")->required();
  cmd->add_option("--input,-i", a->input, "Input dataset: shm:NAME or a file path");
  cmd->add_option("--input2", a->input2, "Second input (two-input kernels such as dot)");
  cmd->add_option("--output,-o", a->output, "Output dataset (map kernels)");
  cmd->add_option("--dtype", a->dtype, "Input dtype (f32 f64 i32 i64 u8); default: recorded");
  cmd->add_option("--dtype2", a->dtype2, "Dtype of --input2; default: recorded, else --dtype");
  cmd->add_option("--output-dtype", a->output_dtype, "Dtype of --output; default: as input");
  cmd->add_option("--offset", a->offset, "Byte offset of element 0 in --input (.npy: auto)")
      ->check(kNotNegative);
  cmd->add_option("--range", a->range, "Elements or points A:B (first A, count B-A)");
  a->count_opt = cmd->add_option("--count,-n", a->count,
                                 "Elements (default: to the end) or points (range kernels)")
                     ->check(kNotNegative);
  cmd->add_option("--slice", a->slice, "Elements per slice (default: the broker's)")
      ->check(kNotNegative);
  cmd->add_option("--param,-p", a->params, "Kernel parameter name=value (repeatable)");
  cmd->add_option(
      "--job-id", a->job_id,
      "Job id (default: random); resubmitting the same job finds it, another job is refused");
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->add_flag("--no-wait", a->no_wait, "Print the job id and return at once");
  cmd->add_flag("--here", a->here,
                "Only workers on this host take the job (files on this host's local disk)");
  a->timeout_opt =
      cmd->add_option("--timeout", a->timeout, "Give up waiting after SECONDS (job keeps running)")
          ->check(kNotNegative);
  add_broker_option(cmd, a->broker);
  commands.push_back({cmd, [a] { return run_submit(*a); }});
}

}  // namespace zwq::cli
