#include "zwq/ipc_check.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace zwq {

namespace {

constexpr std::string_view kScheme = "ipc://";

// The socket path of an "ipc://PATH" endpoint; "" for anything this cannot check.
std::string socket_path(const std::string& endpoint) {
  if (endpoint.compare(0, kScheme.size(), kScheme) != 0) return {};
  std::string path = endpoint.substr(kScheme.size());
  if (path.empty() || path[0] == '@' || path.size() >= sizeof(sockaddr_un{}.sun_path)) return {};
  return path;
}

std::string user_name(uid_t uid) {
  if (const passwd* p = ::getpwuid(uid)) return p->pw_name;
  return std::to_string(uid);
}

std::string group_name(gid_t gid) {
  if (const group* g = ::getgrgid(gid)) return g->gr_name;
  return std::to_string(gid);
}

// "srwxrwx--- zwq:zwq", as ls -l shows a file's type, mode and owners.
std::string describe_mode(const struct stat& st) {
  std::string s = S_ISSOCK(st.st_mode) ? "s" : S_ISDIR(st.st_mode) ? "d" : "-";
  const char* rwx = "rwxrwxrwx";
  for (int bit = 0; bit < 9; ++bit) s += (st.st_mode & (0400 >> bit)) ? rwx[bit] : '-';
  return s + " " + user_name(st.st_uid) + ":" + group_name(st.st_gid);
}

// The directory above `path` that keeps this user out (the highest it may not search), with its
// mode; "" if none.
std::string closed_directory(const std::string& path) {
  std::string dir = path;
  std::string closed;
  while (true) {
    const auto slash = dir.find_last_of('/');
    if (slash == std::string::npos || slash == 0) break;
    dir.resize(slash);
    struct stat st {};
    if (::faccessat(AT_FDCWD, dir.c_str(), X_OK, AT_EACCESS) != 0 && errno == EACCES &&
        ::stat(dir.c_str(), &st) == 0) {
      closed = dir + " (" + describe_mode(st) + ")";
    }
  }
  return closed;
}

IpcCheck denied(const std::string& path) {
  const std::string who = "this user (" + user_name(::geteuid()) + ")";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    std::string why = "permission denied: " + path + " is " + describe_mode(st) + " and " + who +
                      " may not connect to it";
    if (st.st_mode & S_IWGRP) why += "; its users belong to group " + group_name(st.st_gid);
    return {IpcCheck::kDenied, why};
  }
  const std::string dir = closed_directory(path);
  return {IpcCheck::kDenied, "permission denied: " + who + " may not open the directory " +
                                 (dir.empty() ? "of " + path : dir) + ", where the socket is"};
}

}  // namespace

IpcCheck check_ipc_path(const std::string& endpoint) {
  const std::string path = socket_path(endpoint);
  if (path.empty()) return {};
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == EACCES) return denied(path);
    if (errno == ENOENT || errno == ENOTDIR) {
      return {IpcCheck::kMissing, "there is no socket " + path +
                                      ": no broker is bound there (is it running, and is the "
                                      "address right?)"};
    }
    return {IpcCheck::kNotSocket, "cannot look at " + path + ": " + std::strerror(errno)};
  }
  if (!S_ISSOCK(st.st_mode)) {
    return {IpcCheck::kNotSocket, path + " is not a socket (" + describe_mode(st) + ")"};
  }
  if (::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) != 0 && errno == EACCES)
    return denied(path);
  return {};
}

IpcCheck probe_ipc_endpoint(const std::string& endpoint) {
  IpcCheck check = check_ipc_path(endpoint);
  if (check.kind != IpcCheck::kNone) return check;
  const std::string path = socket_path(endpoint);
  if (path.empty()) return check;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return check;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err == ECONNREFUSED) {
    return {IpcCheck::kRefused, "nothing listens on " + path +
                                    ": the socket of a broker that has stopped (or not started "
                                    "listening yet)"};
  }
  return check;  // connected, or a full backlog (EAGAIN): someone listens
}

}  // namespace zwq
