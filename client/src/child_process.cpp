#include "child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

extern char** environ;

namespace zwq::detail {

namespace {

// How often wait_until() looks at the child: a short stop is noticed quickly, and 100 polls a
// second cost nothing.
constexpr std::chrono::milliseconds kPollInterval{10};

// Our environment with `extra` entries added or replaced, as the strings execve wants.
std::vector<std::string> merged_env(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> vars;
  std::vector<std::string> order;
  auto put = [&](const std::string& entry) {
    const std::string key = entry.substr(0, entry.find('='));
    if (vars.emplace(key, entry).second) {
      order.push_back(key);
    } else {
      vars[key] = entry;
    }
  };
  for (char** e = environ; e && *e; ++e) put(*e);
  for (const auto& entry : extra) put(entry);
  std::vector<std::string> out;
  for (const auto& key : order) out.push_back(vars[key]);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// In the child, between fork and exec: only async-signal-safe calls (the parent may have
// threads, e.g. ZeroMQ's).
[[noreturn]] void exec_child(const char* path, char* const* argv, char* const* envp,
                             const SpawnOptions& options, pid_t parent, int error_fd, int out_fd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (options.die_with_parent) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
  }
  if (out_fd >= 0) {
    dup2(out_fd, STDOUT_FILENO);
  } else if (options.discard_stdout) {
    const int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0) dup2(null_fd, STDOUT_FILENO);
  } else if (options.stdout_to_stderr) {
    dup2(STDERR_FILENO, STDOUT_FILENO);
  }
  execve(path, argv, envp);
  const int err = errno;
  [[maybe_unused]] ssize_t n = write(error_fd, &err, sizeof err);
  _exit(127);
}

}  // namespace

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_),
      out_fd_(other.out_fd_),
      path_(std::move(other.path_)),
      status_(other.status_) {
  other.pid_ = -1;
  other.out_fd_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    stop();
    pid_ = other.pid_;
    out_fd_ = other.out_fd_;
    path_ = std::move(other.path_);
    status_ = other.status_;
    other.pid_ = -1;
    other.out_fd_ = -1;
  }
  return *this;
}

Result<ChildProcess> ChildProcess::spawn(const std::string& path,
                                         const std::vector<std::string>& args,
                                         const SpawnOptions& options) {
  // Everything the child needs is built before fork: it may not allocate afterwards.
  std::vector<std::string> argv_s{path};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s = merged_env(options.env);
  std::vector<char*> argv = c_strings(argv_s);
  std::vector<char*> envp = c_strings(env_s);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return make_error(ErrorCode::kInternal, std::string("pipe: ") + std::strerror(errno));
  }
  int out[2] = {-1, -1};
  if (options.capture_stdout && ::pipe2(out, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return make_error(ErrorCode::kInternal, std::string("pipe: ") + std::strerror(err));
  }
  auto close_out = [&] {
    for (int& fd : out) {
      if (fd >= 0) ::close(fd), fd = -1;
    }
  };
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    close_out();
    return make_error(ErrorCode::kInternal, "cannot start " + path + ": " + std::strerror(err));
  }
  if (pid == 0) {
    exec_child(path.c_str(), argv.data(), envp.data(), options, parent, fds[1], out[1]);
  }
  ::close(fds[1]);
  if (out[1] >= 0) ::close(out[1]), out[1] = -1;
  // The pipe closes on a successful exec (O_CLOEXEC) and carries errno on a failed one.
  int err = 0;
  ssize_t n;
  do {
    n = ::read(fds[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  ::close(fds[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    int ignored;
    ::waitpid(pid, &ignored, 0);
    close_out();
    return make_error(ErrorCode::kInternal, "cannot run " + path + ": " + std::strerror(err));
  }
  ChildProcess child;
  child.pid_ = pid;
  child.out_fd_ = out[0];
  child.path_ = path;
  return child;
}

void ChildProcess::reap(int wait_status) {
  if (WIFEXITED(wait_status)) {
    status_ = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    status_ = 128 + WTERMSIG(wait_status);
  } else {
    return;  // stopped or continued: still there
  }
  pid_ = -1;
}

bool ChildProcess::running() {
  if (pid_ < 0) return false;
  int ws = 0;
  const pid_t r = ::waitpid(pid_, &ws, WNOHANG);
  if (r == pid_) reap(ws);
  if (r < 0 && errno == ECHILD) pid_ = -1;  // reaped elsewhere; nothing left to own
  return pid_ >= 0;
}

void ChildProcess::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

bool ChildProcess::wait_until(std::chrono::steady_clock::time_point deadline) {
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
  return true;
}

int ChildProcess::wait() {
  while (pid_ >= 0) {
    int ws = 0;
    const pid_t r = ::waitpid(pid_, &ws, 0);
    if (r == pid_) {
      reap(ws);
    } else if (r < 0 && errno != EINTR) {
      pid_ = -1;
    }
  }
  return status_.value_or(-1);
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
  if (running()) {
    ::kill(pid_, SIGTERM);
    if (!wait_until(std::chrono::steady_clock::now() + grace)) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  close_output();
  return status_.value_or(-1);
}

void ChildProcess::close_output() {
  if (out_fd_ >= 0) ::close(out_fd_);
  out_fd_ = -1;
}

std::string ChildProcess::read_all(std::chrono::milliseconds timeout) {
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (out_fd_ >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      stop();
      break;
    }
    pollfd p{out_fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 1000)));
    if (r <= 0) continue;  // EINTR or nothing yet: the deadline decides
    const ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

std::string ChildProcess::describe_exit() const {
  std::string name = path_.substr(path_.rfind('/') + 1);
  if (!status_) return name + " is running";
  if (*status_ > 128) return name + " was killed by signal " + std::to_string(*status_ - 128);
  return name + " exited with status " + std::to_string(*status_);
}

std::optional<std::string> find_in_dirs(const std::string& name,
                                        const std::vector<std::string>& dirs) {
  for (const auto& dir : dirs) {
    if (dir.empty()) continue;
    const std::string path = dir + "/" + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return std::nullopt;
}

std::vector<std::string> path_dirs() {
  std::vector<std::string> dirs;
  const char* path = std::getenv("PATH");
  std::string rest = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t pos = 0;
  while (pos <= rest.size()) {
    const std::size_t colon = std::min(rest.find(':', pos), rest.size());
    dirs.push_back(rest.substr(pos, colon - pos));
    pos = colon + 1;
  }
  return dirs;
}

namespace {

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string self_dir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? dir_of(std::string(buf, static_cast<std::size_t>(n))) : "";
}

}  // namespace

std::vector<std::string> zwq_program_dirs(const std::string& bin_dir) {
  if (!bin_dir.empty()) return {bin_dir};
  std::vector<std::string> dirs;
  const std::string self = self_dir();
  if (!self.empty()) {
    dirs.push_back(self);
    dirs.push_back(self + "/../bin");  // a test binary beside build/bin
  }
  if (const char* env = std::getenv("ZWQ_BIN_DIR")) dirs.push_back(env);
  for (auto& d : path_dirs()) dirs.push_back(std::move(d));
  return dirs;
}

std::optional<std::string> find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  return find_in_dirs(name, path_dirs());
}

}  // namespace zwq::detail
