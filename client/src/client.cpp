#include "zwq/client.hpp"

#include <algorithm>
#include <cstdlib>

#include "connection.hpp"

namespace zwq {

namespace {

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
  auto conn = detail::Connection::open(address, options.request_timeout, options.retries);
  if (!conn.ok()) return conn.error();
  conn.value()->set_outage_tolerance(options.outage_tolerance);
  // No retry here: a wrong address should fail after one timeout, not several.
  auto info = conn.value()->call<msg::InfoRep>(msg::InfoReq{}, std::chrono::milliseconds(0), 0);
  if (!info.ok()) return info.error();
  if (info.value().version != proto::kVersion) {
    return make_error(ErrorCode::kVersionMismatch,
                      "broker at " + address + " speaks protocol version " +
                          std::to_string(info.value().version) + ", this client " +
                          std::to_string(proto::kVersion));
  }
  conn.value()->set_info(std::move(info).value());
  return Client(std::move(conn).value());
}

Result<Job> Client::submit(const JobRequest& request) {
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
  msg::SubmitReq req;
  req.job = spec.value();
  auto rep = conn_->call<msg::SubmitRep>(req);
  if (!rep.ok()) return rep.error();
  return Job(conn_, std::move(spec).value(), rep.value());
}

Result<JobResult> Client::run(const JobRequest& request,
                              std::optional<std::chrono::milliseconds> timeout) {
  auto job = submit(request);
  if (!job.ok()) return job.error();
  return job.value().wait(timeout);
}

Result<std::vector<JobStatus>> Client::status(const std::string& job_id) {
  msg::StatusReq req;
  req.job_id = job_id;
  auto rep = conn_->call<msg::StatusRep>(req);
  if (!rep.ok()) return rep.error();
  return std::move(rep.value().jobs);
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
