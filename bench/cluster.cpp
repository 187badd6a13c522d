#include "cluster.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace zwq::bench {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Where the cpu controller of cgroup v1 is mounted on Debian and in most containers.
constexpr const char* kCpuCgroupRoot = "/sys/fs/cgroup/cpu";
// The CFS period of the throttled worker: short, so that its slowness is smooth at the scale of
// one slice (a 100 ms period would run it at full speed for 25 ms, then stop it for 75 ms).
constexpr int kCfsPeriodUs = 10000;

std::optional<std::string> read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  return line;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace

BenchCluster::BenchCluster(BenchClusterOptions options) : options_(std::move(options)) {
  char tmpl[] = "/tmp/zwq-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr)
    throw std::runtime_error("mkdtemp: " + std::string(strerror(errno)));
  temp_dir_ = tmpl;
  const auto deadline = Clock::now() + options_.start_timeout;
  start_broker();
  start_workers();
  wait_for_workers(deadline);
}

BenchCluster::~BenchCluster() {
  client_.reset();
  // The broker's ShutdownEvent would stop the workers too; SIGTERM each for certainty.
  for (auto& w : workers_) {
    if (w.running()) ::kill(w.pid(), SIGTERM);
  }
  broker_.stop();
  for (auto& w : workers_) w.stop(milliseconds(5000));
  ::unlink((temp_dir_ + "/ready").c_str());
  ::rmdir(temp_dir_.c_str());
}

void BenchCluster::start_broker() {
  const std::string ready = temp_dir_ + "/ready";
  std::vector<std::string> args{"--ready-file", ready,
                                "--log-level",  options_.log_level,
                                "--max-batch",  std::to_string(options_.max_batch)};
  args.insert(args.end(), options_.broker_args.begin(), options_.broker_args.end());
  broker_ = spawn_child(options_.bin_dir + "/zwq-broker", args, Output::kDiscard);
  const auto deadline = Clock::now() + milliseconds(10000);
  while (true) {
    if (auto line = read_line(ready); line && !line->empty()) {
      address_ = *line;
      break;
    }
    if (!broker_.running()) throw std::runtime_error("zwq-broker exited at start");
    if (Clock::now() > deadline) throw std::runtime_error("zwq-broker did not become ready");
    std::this_thread::sleep_for(milliseconds(5));
  }
  auto client = Client::connect({.broker = address_, .request_timeout = milliseconds(30000)});
  if (!client.ok()) throw std::runtime_error("connect: " + client.error().to_string());
  client_.emplace(std::move(client).value());
}

void BenchCluster::start_workers() {
  if (options_.workers <= 0) return;
  std::vector<std::string> common{"--broker", address_, "--log-level", options_.log_level};
  if (options_.credit > 0) {
    common.insert(common.end(), {"--credit", std::to_string(options_.credit)});
  }
  if (options_.nice > 0) common.insert(common.end(), {"--nice", std::to_string(options_.nice)});
  const std::string path = options_.bin_dir + "/zwq-worker";
  if (!options_.separate) {
    auto args = common;
    args.insert(args.end(), {"--count", std::to_string(options_.workers)});
    workers_.push_back(spawn_child(path, args, Output::kDiscard));
    return;
  }
  for (int i = 0; i < options_.workers; ++i) {
    auto args = common;
    args.insert(args.end(), {"--worker-id", "bench-w" + std::to_string(i)});
    workers_.push_back(spawn_child(path, args, Output::kDiscard));
    if (i == 0 && !options_.slow_cgroup.empty() &&
        !join_cgroup(options_.slow_cgroup, workers_.back().pid())) {
      throw std::runtime_error("cannot move worker 0 into " + options_.slow_cgroup);
    }
  }
}

void BenchCluster::wait_for_workers(Clock::time_point deadline) {
  if (options_.workers <= 0) return;
  while (true) {
    auto list = client_->workers();
    if (list.ok()) {
      int live = 0;
      for (const auto& w : list.value()) live += w.state != "dead";
      if (live >= options_.workers) return;
    }
    if (!healthy()) throw std::runtime_error("a zwq-worker or zwq-broker process exited at start");
    if (Clock::now() > deadline) {
      throw std::runtime_error("only some of " + std::to_string(options_.workers) +
                               " workers registered in time");
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
}

std::vector<pid_t> BenchCluster::worker_pids() const {
  std::vector<pid_t> out;
  for (const auto& w : workers_) {
    if (w.pid() <= 0) continue;
    out.push_back(w.pid());
    for (pid_t c : children_of(w.pid())) out.push_back(c);
  }
  return out;
}

bool BenchCluster::healthy() {
  if (!broker_.running()) return false;
  for (auto& w : workers_) {
    if (!w.running()) return false;
  }
  return true;
}

CpuQuota::CpuQuota(int percent) {
  struct stat st {};
  if (::stat((std::string(kCpuCgroupRoot) + "/cpu.cfs_quota_us").c_str(), &st) != 0) {
    error_ = std::string("no cgroup-v1 cpu controller at ") + kCpuCgroupRoot;
    return;
  }
  const std::string dir = std::string(kCpuCgroupRoot) + "/zwq-bench-" + std::to_string(::getpid());
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    error_ = "cannot create " + dir + ": " + std::strerror(errno);
    return;
  }
  const int quota = kCfsPeriodUs * percent / 100;
  if (!write_file(dir + "/cpu.cfs_period_us", std::to_string(kCfsPeriodUs)) ||
      !write_file(dir + "/cpu.cfs_quota_us", std::to_string(quota))) {
    ::rmdir(dir.c_str());
    error_ = "cannot set the CFS quota in " + dir;
    return;
  }
  dir_ = dir;
}

CpuQuota::~CpuQuota() {
  if (dir_.empty()) return;
  // A cgroup can be removed once its processes are gone; give the stopped worker a moment.
  for (int i = 0; i < 100 && ::rmdir(dir_.c_str()) != 0 && errno == EBUSY; ++i) {
    std::this_thread::sleep_for(milliseconds(20));
  }
}

bool join_cgroup(const std::string& dir, pid_t pid) {
  return write_file(dir + "/cgroup.procs", std::to_string(pid));
}

}  // namespace zwq::bench
