#include "shm_tracker.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "child_process.hpp"

extern char** environ;

namespace zwq::detail {

namespace {

// A request is one SOCK_SEQPACKET packet: '+' (track) or '-' (untrack), the Tracked kind, then
// the path's bytes. Packets keep their bounds and arrive whole and in order, so threads need no
// framing; and send() with MSG_NOSIGNAL turns a dead tracker into EPIPE rather than SIGPIPE.
constexpr std::size_t kHeader = 2;
// How often the tracker looks whether its owner has ended, after the socket closed.
constexpr std::chrono::milliseconds kOwnerPoll{10};

// ---- This side.

std::mutex g_mutex;
int g_fd = -1;         // our end of the socket; -1 before the tracker started, or if it failed
bool g_tried = false;  // whether we tried to start it (once per program)

// In the child, between fork and exec: only async-signal-safe calls (the parent may have had
// other threads, holding malloc's lock, when it forked).
[[noreturn]] void exec_tracker(const char* path, char* const* argv, int fd, int max_fd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  setpgid(0, 0);  // out of the program's group: a Ctrl-C to the group is not for it
  if (fd != 3) {
    dup2(fd, 3);  // (the copy is not close-on-exec)
  } else {
    fcntl(3, F_SETFD, 0);
  }
  const int null_fd = open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    dup2(null_fd, STDIN_FILENO);
    dup2(null_fd, STDOUT_FILENO);
  }
  // Nothing else of the program's stays open in it: a pipe it held would not see its end.
#ifdef SYS_close_range
  const bool closed = syscall(SYS_close_range, 4u, ~0u, 0u) == 0;
#else
  const bool closed = false;
#endif
  if (!closed) {
    for (int i = 4; i < max_fd; ++i) close(i);
  }
  execve(path, argv, environ);
  _exit(127);
}

void start_tracker() {
  g_tried = true;
  const auto path = find_in_dirs("zwq-tracker", zwq_program_dirs());
  if (!path) {
    // Once per program, as Python's resource tracker warns: what it leaves if killed stays.
    std::fprintf(stderr,
                 "zwq: zwq-tracker not found (beside this program, in $ZWQ_BIN_DIR or on $PATH): "
                 "shared arrays this program leaves if it is killed will not be removed\n");
    return;
  }
  // Everything the child needs is made before fork: it may not allocate afterwards.
  std::string owner = std::to_string(::getpid());
  std::string path_s = *path;
  std::string flag = "--owner";
  char* argv[] = {path_s.data(), flag.data(), owner.data(), nullptr};
  rlimit files{};
  const int max_fd = ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < (1u << 20)
                         ? static_cast<int>(files.rlim_cur)
                         : (1 << 20);
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return;
  const pid_t pid = ::fork();
  if (pid == 0) exec_tracker(path_s.c_str(), argv, fds[1], max_fd);
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    return;
  }
  g_fd = fds[0];
}

void send_request(char op, Tracked kind, const std::string& path) {
  if (g_fd < 0 || path.empty() || path.size() > kMaxTrackedPath) return;
  std::string packet;
  packet.reserve(kHeader + path.size());
  packet += op;
  packet += static_cast<char>(kind);
  packet += path;
  ssize_t n;
  do {
    n = ::send(g_fd, packet.data(), packet.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
}

// ---- The tracker's side.

using Entry = std::pair<char, std::string>;  // (Tracked kind, path)

void apply(std::vector<Entry>& tracked, const char* packet, std::size_t n) {
  if (n <= kHeader) return;
  Entry e{packet[1], std::string(packet + kHeader, n - kHeader)};
  if (packet[0] == '+') {
    tracked.push_back(std::move(e));
  } else if (packet[0] == '-') {
    const auto it = std::find(tracked.begin(), tracked.end(), e);
    if (it != tracked.end()) tracked.erase(it);
  }
}

void remove_left(const std::vector<Entry>& tracked, pid_t owner) {
  for (const auto& [kind, path] : tracked) {
    std::error_code ec;
    if (kind == static_cast<char>(Tracked::kDirectory)) {
      // The cluster's broker, stopping as well, may be removing its sockets in there: a
      // remove_all that lost that race (ENOENT midway) is tried again.
      const auto deadline = std::chrono::steady_clock::now() + kOwnerGrace;
      while (std::filesystem::remove_all(path, ec) == static_cast<std::uintmax_t>(-1) &&
             std::filesystem::exists(path, ec) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(kOwnerPoll);
      }
    } else if (kind == static_cast<char>(Tracked::kShmArray)) {
      std::filesystem::remove(path + ".zwq-meta", ec);  // the sidecar first: then the array's
      if (::unlink(path.c_str()) != 0) continue;        // absence means both are gone
      std::fprintf(stderr,
                   "zwq-tracker: removed %s, a shared array that process %d created and did not "
                   "remove before it ended\n",
                   path.c_str(), static_cast<int>(owner));
    }
  }
}

}  // namespace

void track(Tracked kind, const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_tried) start_tracker();
  send_request('+', kind, path);
}

void untrack(Tracked kind, const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  send_request('-', kind, path);
}

int run_tracker(int fd, pid_t owner) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::sigaction(sig, &ignore, nullptr);
  std::vector<Entry> tracked;
  std::vector<char> packet(kHeader + kMaxTrackedPath + 1);
  while (true) {
    const ssize_t n = ::recv(fd, packet.data(), packet.size(), 0);
    if (n > 0) {
      apply(tracked, packet.data(), static_cast<std::size_t>(n));
    } else if (n == 0) {
      break;  // every holder of the other end has closed it
    } else if (errno != EINTR) {
      std::fprintf(stderr, "zwq-tracker: the socket failed (%s); removing nothing\n",
                   std::strerror(errno));
      return 1;
    }
  }
  // Its sockets close as a process exits, before it is reparented away from us: wait for that.
  // If it does not come, the owner still runs (it exec'd, or closed the socket) and may be using
  // what it made.
  const auto deadline = std::chrono::steady_clock::now() + kOwnerGrace;
  while (::getppid() == owner) {
    if (std::chrono::steady_clock::now() >= deadline) return 0;
    std::this_thread::sleep_for(kOwnerPoll);
  }
  remove_left(tracked, owner);
  return 0;
}

}  // namespace zwq::detail
