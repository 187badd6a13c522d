#include "zwq/local_cluster.hpp"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "child_process.hpp"
#include "shm_tracker.hpp"
#include "zwq/client.hpp"

namespace zwq {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often start-up looks for the ready file and the worker count: quick enough that a cluster
// is ready within a few ms of the last worker, cheap enough not to matter.
constexpr milliseconds kStartPoll{10};
// How long stopped processes get to exit on SIGTERM before SIGKILL.
constexpr milliseconds kStopGrace{3000};

std::string find_binary(const std::string& name, const std::vector<std::string>& dirs) {
  if (auto path = detail::find_in_dirs(name, dirs)) return *path;
  std::string where;
  for (const auto& d : dirs) where += (where.empty() ? "" : ":") + d;
  throw SetupError("cannot find " + name + " (looked in " + where +
                   "); set LocalClusterOptions::bin_dir or ZWQ_BIN_DIR");
}

std::string make_temp_dir() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  std::string tmpl = std::string(runtime && *runtime ? runtime : "/tmp") + "/zwq-local-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw SetupError("cannot create a temporary directory " + tmpl + ": " + std::strerror(errno));
  }
  return tmpl;
}

// The ready file's content once complete (the broker writes it atomically, "endpoint\n").
std::optional<std::string> read_ready_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.empty() || text.back() != '\n') return std::nullopt;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::size_t live_workers(const std::vector<WorkerStatus>& workers) {
  std::size_t n = 0;
  for (const auto& w : workers) n += w.state != "dead";
  return n;
}

}  // namespace

struct LocalCluster::Impl {
  LocalClusterOptions options;
  std::string temp_dir;
  std::string address;
  detail::ChildProcess broker;
  detail::ChildProcess workers;
  std::optional<Client> client;

  ~Impl() { stop(); }
  void start();
  void start_broker(const std::string& path, Clock::time_point deadline);
  void start_workers(const std::string& path, Clock::time_point deadline);
  void expect_running(detail::ChildProcess& child, const char* while_doing);
  void stop();
};

void LocalCluster::Impl::expect_running(detail::ChildProcess& child, const char* while_doing) {
  if (!child.running()) {
    throw SetupError(child.describe_exit() + " " + while_doing + " (its messages are on stderr)");
  }
}

void LocalCluster::Impl::start() {
  if (options.worker_nice < 0 || options.worker_nice > 19) {
    throw SetupError("worker_nice must be 0-19 (added to the workers' nice value), not " +
                     std::to_string(options.worker_nice));
  }
  if (options.workers <= 0) {
    options.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  const auto dirs = detail::zwq_program_dirs(options.bin_dir);
  const std::string broker_path = find_binary("zwq-broker", dirs);
  const std::string worker_path = find_binary("zwq-worker", dirs);
  const auto deadline = Clock::now() + options.start_timeout;
  temp_dir = make_temp_dir();
  detail::track(detail::Tracked::kDirectory, temp_dir);  // should we be killed before stop()
  start_broker(broker_path, deadline);
  start_workers(worker_path, deadline);
}

void LocalCluster::Impl::start_broker(const std::string& path, Clock::time_point deadline) {
  const std::string ready = temp_dir + "/ready";
  std::vector<std::string> args{"--ready-file", ready, "--log-level", options.log_level};
  // Without a bind address, its sockets go in our own directory (the broker makes `sock` and
  // removes it as it exits), so that stop() can remove them whatever became of the broker.
  args.insert(args.end(), {"--bind", options.bind.empty() ? "ipc://" + temp_dir + "/sock/control"
                                                          : options.bind});
  args.insert(args.end(), options.broker_args.begin(), options.broker_args.end());
  detail::SpawnOptions spawn;
  spawn.discard_stdout = true;  // it only prints its address, which we read from the ready file
  auto child = detail::ChildProcess::spawn(path, args, spawn);
  if (!child.ok()) throw SetupError(child.error().message);
  broker = std::move(child).value();
  while (true) {
    if (auto addr = read_ready_file(ready)) {
      address = *addr;
      return;
    }
    expect_running(broker, "before it was ready");
    if (Clock::now() >= deadline) {
      throw SetupError("zwq-broker did not write " + ready + " within " +
                       std::to_string(options.start_timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(kStartPoll);
  }
}

void LocalCluster::Impl::start_workers(const std::string& path, Clock::time_point deadline) {
  // --respawn: as Pool does, a worker process that a signal killed is replaced.
  std::vector<std::string> args{
      "--broker",    address,           "--count",  std::to_string(options.workers),
      "--log-level", options.log_level, "--respawn"};
  for (const auto& plugin : options.plugins) args.insert(args.end(), {"--plugin", plugin});
  if (options.worker_nice != 0)
    args.insert(args.end(), {"--nice", std::to_string(options.worker_nice)});
  detail::SpawnOptions spawn;
  spawn.stdout_to_stderr = true;
  auto child = detail::ChildProcess::spawn(path, args, spawn);
  if (!child.ok()) throw SetupError(child.error().message);
  workers = std::move(child).value();
  ClientOptions copts;
  copts.broker = address;
  copts.request_timeout = options.request_timeout;
  auto c = Client::connect(copts);
  if (!c.ok()) throw SetupError("cannot reach the local broker: " + c.error().to_string());
  client.emplace(std::move(c).value());
  std::size_t seen = 0;
  while (true) {
    auto ws = client->workers();
    if (!ws.ok()) throw SetupError("local broker: " + ws.error().to_string());
    seen = live_workers(ws.value());
    if (seen >= static_cast<std::size_t>(options.workers)) return;
    expect_running(broker, "while workers were starting");
    expect_running(workers, "before all workers registered");
    if (Clock::now() >= deadline) {
      throw SetupError("only " + std::to_string(seen) + " of " + std::to_string(options.workers) +
                       " workers registered with " + address + " within " +
                       std::to_string(options.start_timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(kStartPoll);
  }
}

void LocalCluster::Impl::stop() {
  client.reset();  // close our socket before the broker goes
  // Both get SIGTERM at once, so the whole stop takes one grace period at most.
  workers.signal(SIGTERM);
  broker.signal(SIGTERM);
  const auto deadline = Clock::now() + kStopGrace;
  for (detail::ChildProcess* child : {&workers, &broker}) {
    if (!child->wait_until(deadline)) child->stop(milliseconds(0));
  }
  if (!temp_dir.empty()) {
    // The ready file, and the sockets of a broker that could not remove them (killed).
    std::error_code ec;
    std::filesystem::remove_all(temp_dir, ec);
    detail::untrack(detail::Tracked::kDirectory, temp_dir);
    temp_dir.clear();
  }
}

LocalCluster::LocalCluster(LocalClusterOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->start();  // on a throw, impl_'s destructor stops whatever did start
}

LocalCluster::~LocalCluster() = default;
LocalCluster::LocalCluster(LocalCluster&&) noexcept = default;
LocalCluster& LocalCluster::operator=(LocalCluster&&) noexcept = default;

const std::string& LocalCluster::address() const {
  return impl_->address;
}

Client& LocalCluster::client() {
  if (!impl_->client) throw SetupError("the local cluster was stopped");
  return *impl_->client;
}

int LocalCluster::workers() const {
  return impl_->options.workers;
}

bool LocalCluster::shut_down(std::chrono::milliseconds grace) {
  // Told to shut down, the broker tells the workers first: they may be gone before it is.
  const bool workers_done = !impl_->workers.running() && impl_->workers.exit_status() == 0;
  if (workers_done && impl_->broker.running()) impl_->broker.wait_until(Clock::now() + grace);
  return !impl_->broker.running() && impl_->broker.exit_status() == 0;
}

Status LocalCluster::check() const {
  for (detail::ChildProcess* child : {&impl_->broker, &impl_->workers}) {
    if (!child->running()) return make_error(ErrorCode::kUnreachable, child->describe_exit());
  }
  return Status::Ok();
}

void LocalCluster::stop() {
  if (impl_) impl_->stop();
}

}  // namespace zwq
