#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "thread_time.hpp"

namespace zwq::bench {

namespace {

// Paths to unlink on SIGINT/SIGTERM: fixed storage, so the handler touches no allocator.
constexpr std::size_t kMaxCleanup = 16;
constexpr std::size_t kMaxPath = 256;
std::array<std::array<char, kMaxPath>, kMaxCleanup> g_cleanup{};
std::array<std::atomic<bool>, kMaxCleanup> g_cleanup_used{};

extern "C" void on_stop_signal(int sig) {
  for (std::size_t i = 0; i < kMaxCleanup; ++i) {
    if (g_cleanup_used[i].load()) ::unlink(g_cleanup[i].data());
  }
  ::_exit(128 + sig);
}

}  // namespace

Child spawn_child(const std::string& path, const std::vector<std::string>& args, Output out) {
  detail::SpawnOptions options;
  options.capture_stdout = out == Output::kCapture;
  options.discard_stdout = out == Output::kDiscard;
  auto child = Child::spawn(path, args, options);
  if (!child.ok()) throw std::runtime_error(child.error().to_string());
  return std::move(child).value();
}

std::string self_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

std::string self_dir() {
  const std::string p = self_path();
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

std::optional<double> cpu_seconds(pid_t pid) {
  const auto tasks = task_ids(pid);
  if (!tasks) return std::nullopt;
  double total = 0;
  for (pid_t tid : *tasks) total += static_cast<double>(thread_on_cpu_ns(pid, tid)) * 1e-9;
  return total;
}

std::optional<std::uint64_t> context_switches(pid_t pid) {
  const auto tasks = task_ids(pid);
  if (!tasks) return std::nullopt;
  std::uint64_t total = 0;
  for (pid_t tid : *tasks) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
    std::string key;
    while (in >> key) {
      std::uint64_t n = 0;
      if (key == "voluntary_ctxt_switches:" || key == "nonvoluntary_ctxt_switches:") {
        if (in >> n) total += n;
      }
      in.ignore(1 << 20, '\n');
    }
  }
  return total;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  for (pid_t tid : task_ids(pid).value_or(std::vector<pid_t>{})) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) +
                     "/children");
    for (pid_t c = 0; in >> c;) out.push_back(c);
  }
  return out;
}

std::optional<std::uint64_t> rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      std::uint64_t kib = 0;
      in >> kib;
      return kib * 1024;
    }
    in.ignore(1 << 20, '\n');
  }
  return std::nullopt;
}

void remove_on_signal(const std::string& path) {
  if (path.size() >= kMaxPath) return;
  for (std::size_t i = 0; i < kMaxCleanup; ++i) {
    if (g_cleanup_used[i].load()) continue;
    std::memcpy(g_cleanup[i].data(), path.c_str(), path.size() + 1);
    g_cleanup_used[i].store(true);
    return;
  }
}

void forget_on_signal(const std::string& path) {
  for (std::size_t i = 0; i < kMaxCleanup; ++i) {
    if (g_cleanup_used[i].load() && path == g_cleanup[i].data()) g_cleanup_used[i].store(false);
  }
}

void install_signal_cleanup() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace zwq::bench
