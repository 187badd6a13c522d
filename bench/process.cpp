#include "process.hpp"

#include <dirent.h>
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

namespace zwq::bench {

namespace {

using Clock = std::chrono::steady_clock;

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

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

Child::Child(Child&& other) noexcept
    : pid_(other.pid_), out_fd_(other.out_fd_), code_(other.code_) {
  other.pid_ = -1;
  other.out_fd_ = -1;
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    stop();
    pid_ = other.pid_;
    out_fd_ = other.out_fd_;
    code_ = other.code_;
    other.pid_ = -1;
    other.out_fd_ = -1;
  }
  return *this;
}

Child Child::spawn(const std::string& path, const std::vector<std::string>& args, Output out) {
  std::vector<std::string> argv_s{path};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv = c_strings(argv_s);
  int pipe_fds[2] = {-1, -1};
  if (out == Output::kCapture && ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  const int devnull = out == Output::kDiscard ? ::open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    // Only async-signal-safe calls until exec: the parent has ZeroMQ threads.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    if (pipe_fds[1] >= 0) ::dup2(pipe_fds[1], STDOUT_FILENO);
    if (devnull >= 0) ::dup2(devnull, STDOUT_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (devnull >= 0) ::close(devnull);
  Child child;
  child.pid_ = pid;
  if (pipe_fds[1] >= 0) {
    ::close(pipe_fds[1]);
    child.out_fd_ = pipe_fds[0];
  }
  return child;
}

void Child::reap(int status) {
  code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  pid_ = -1;
}

bool Child::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) reap(status);
  return pid_ > 0;
}

std::optional<int> Child::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (running()) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return code_;
}

int Child::stop(std::chrono::milliseconds grace) {
  if (running()) {
    ::kill(pid_, SIGTERM);
    if (!wait_for(grace)) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      if (::waitpid(pid_, &status, 0) == pid_) reap(status);
    }
  }
  if (out_fd_ >= 0) {
    ::close(out_fd_);
    out_fd_ = -1;
  }
  return code_.value_or(-1);
}

std::string Child::read_all(std::chrono::milliseconds timeout) {
  std::string text;
  if (out_fd_ < 0) return text;
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      stop();
      break;
    }
    pollfd p{out_fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    const ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
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
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return std::nullopt;
  double total = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name + "/schedstat");
    unsigned long long on_cpu_ns = 0;
    if (in >> on_cpu_ns) total += static_cast<double>(on_cpu_ns) * 1e-9;
  }
  ::closedir(d);
  return total;
}

std::optional<std::uint64_t> context_switches(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return std::nullopt;
  std::uint64_t total = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name + "/status");
    std::string key;
    while (in >> key) {
      std::uint64_t n = 0;
      if (key == "voluntary_ctxt_switches:" || key == "nonvoluntary_ctxt_switches:") {
        if (in >> n) total += n;
      }
      in.ignore(1 << 20, '\n');
    }
  }
  ::closedir(d);
  return total;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name + "/children");
    for (pid_t c = 0; in >> c;) out.push_back(c);
  }
  ::closedir(d);
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
