#include "shm_tracker.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace zwq::detail {

namespace {

// A message is one SOCK_SEQPACKET packet: '+' (track) or '-' (untrack), the Tracked kind, then
// the path's bytes. Packets keep their bounds and arrive whole and in order, so threads need no
// framing; and send() with MSG_NOSIGNAL turns a dead tracker into EPIPE rather than SIGPIPE.
constexpr std::size_t kHeader = 2;

// ---- The tracker process: from fork to _exit, only async-signal-safe calls (the parent may
// have had other threads, holding malloc's lock, when it forked). Its table is static, so it
// never allocates; the pages are only touched in the tracker.

struct Entry {
  char kind;  // 0: free
  std::size_t len;
  char path[kMaxPath];
};
Entry g_table[kMaxTracked];

bool same(const Entry& e, char kind, const char* path, std::size_t len) {
  return e.kind == kind && e.len == len && std::memcmp(e.path, path, len) == 0;
}

void apply(const char* packet, std::size_t n) {
  if (n <= kHeader || n - kHeader >= kMaxPath) return;  // (too long to remember: not tracked)
  const char op = packet[0];
  const char kind = packet[1];
  const char* path = packet + kHeader;
  const std::size_t len = n - kHeader;
  if (op == '-') {
    for (Entry& e : g_table) {
      if (same(e, kind, path, len)) {
        e.kind = 0;
        return;
      }
    }
  } else if (op == '+') {
    for (Entry& e : g_table) {
      if (e.kind == 0) {
        e.kind = kind;
        e.len = len;
        std::memcpy(e.path, path, len);
        e.path[len] = '\0';
        return;
      }
    }
  }
}

void say(const char* s) {
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, s, std::strlen(s));
}

// Appends the decimal digits of `v` to `out` (which has room).
char* put_number(char* out, long v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n > 0) *out++ = digits[--n];
  return out;
}

// Removes what directory `dir_fd` holds, descending `depth` more levels.
void empty_dir(int dir_fd, int depth) {
  alignas(8) char buf[4096];
  // Entries removed while reading can shift the directory's offsets: read it again from the
  // start after each batch, until a pass finds nothing left to remove (or nothing it can).
  for (bool removed = true; removed;) {
    removed = false;
    ::lseek(dir_fd, 0, SEEK_SET);
    const long n = ::syscall(SYS_getdents64, dir_fd, buf, sizeof buf);
    for (long off = 0; off < n;) {
      const auto* d = reinterpret_cast<const dirent64*>(buf + off);
      off += d->d_reclen;
      const char* name = d->d_name;
      if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
      if (::unlinkat(dir_fd, name, 0) == 0) {
        removed = true;
        continue;
      }
      if (errno != EISDIR || depth == 0) continue;  // (d_type may be DT_UNKNOWN: ask unlink)
      const int sub = ::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) {
        empty_dir(sub, depth - 1);
        ::close(sub);
      }
      removed |= ::unlinkat(dir_fd, name, AT_REMOVEDIR) == 0;
    }
  }
}

void remove_tree(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    empty_dir(fd, 1);
    ::close(fd);
  }
  ::rmdir(path);
}

void remove_array(const Entry& e, pid_t owner) {
  if (::unlink(e.path) != 0) return;  // gone already (or never ours to remove): no word
  char meta[kMaxPath + 16];
  std::memcpy(meta, e.path, e.len);
  std::memcpy(meta + e.len, ".zwq-meta", sizeof ".zwq-meta");
  ::unlink(meta);
  char line[kMaxPath + 128];
  char* p = line;
  const char* parts[] = {"zwq: removed ", e.path, ", a shared array that process "};
  for (const char* s : parts) p = std::strcpy(p, s) + std::strlen(s);
  p = put_number(p, owner);
  const char* tail = " created and did not remove before it ended\n";
  std::strcpy(p, tail);
  say(line);
}

[[noreturn]] void run_tracker(int fd, pid_t owner) {
  ::prctl(PR_SET_NAME, "zwq-tracker");
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::sigaction(sig, &ignore, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Keep nothing of the parent's open: a pipe we held would not see its end when the parent's
  // readers expect it. Only stderr stays, for the notes.
  if (fd != 3) {
    ::dup2(fd, 3);
    ::close(fd);
  }
  ::close(STDIN_FILENO);
  ::close(STDOUT_FILENO);
#ifdef SYS_close_range
  const bool closed = ::syscall(SYS_close_range, 4u, ~0u, 0u) == 0;
#else
  const bool closed = false;
#endif
  if (!closed) {
    for (int i = 4; i < 65536; ++i) ::close(i);
  }
  char packet[kHeader + kMaxPath];
  while (true) {
    const ssize_t n = ::recv(3, packet, sizeof packet, 0);
    if (n > 0) {
      apply(packet, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;  // every owner has gone
    }
  }
  for (const Entry& e : g_table) {
    if (e.kind == static_cast<char>(Tracked::kShmArray)) remove_array(e, owner);
    if (e.kind == static_cast<char>(Tracked::kDirectory)) remove_tree(e.path);
  }
  ::_exit(0);
}

// ---- This side.

std::mutex g_mutex;
int g_fd = -1;         // our end of the socket; -1 before the tracker started, or if it failed
bool g_tried = false;  // whether we tried to start it (once per program; a forked child shares it)

void start_tracker() {
  g_tried = true;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return;
  const pid_t owner = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return;
  }
  if (pid == 0) {
    ::close(fds[0]);
    run_tracker(fds[1], owner);
  }
  ::close(fds[1]);
  g_fd = fds[0];
}

void send_packet(char op, Tracked kind, const std::string& path) {
  if (g_fd < 0 || path.size() >= kMaxPath) return;
  char packet[kHeader + kMaxPath];
  packet[0] = op;
  packet[1] = static_cast<char>(kind);
  std::memcpy(packet + kHeader, path.data(), path.size());
  ssize_t n;
  do {
    n = ::send(g_fd, packet, kHeader + path.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
}

}  // namespace

void track(Tracked kind, const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_tried) start_tracker();
  send_packet('+', kind, path);
}

void untrack(Tracked kind, const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  send_packet('-', kind, path);
}

}  // namespace zwq::detail
