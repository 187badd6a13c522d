// check_ipc_path / probe_ipc_endpoint: what stands between a process and a broker's ipc socket
// (no file, no listener, no permission), told from the file itself.
#include "zwq/ipc_check.hpp"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "test_dir.hpp"

using zwq::IpcCheck;

namespace {

constexpr uid_t kOutsider = 61236;  // an account that owns nothing here

// A Unix stream socket bound at `path`; listening unless told not to. Closing it leaves the file.
struct BoundSocket {
  int fd = -1;
  BoundSocket(const std::string& path, bool listening) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
    if (listening) REQUIRE(::listen(fd, 4) == 0);
  }
  ~BoundSocket() { ::close(fd); }
};

// What check_ipc_path(endpoint) gives to a process of uid and gid `kOutsider`. (A kind of -1:
// the child could not become that user.)
IpcCheck outsider_check(const std::string& endpoint) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(kOutsider, kOutsider, kOutsider) != 0 ||
        ::setresuid(kOutsider, kOutsider, kOutsider) != 0) {
      std::_Exit(100);
    }
    const IpcCheck check = zwq::check_ipc_path(endpoint);
    if (::write(fds[1], check.why.data(), check.why.size()) < 0) std::_Exit(101);
    std::_Exit(static_cast<int>(check.kind));
  }
  ::close(fds[1]);
  IpcCheck out;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) out.why.append(buf, n);
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) < 100);
  out.kind = static_cast<IpcCheck::Kind>(WEXITSTATUS(status));
  return out;
}

}  // namespace

TEST_CASE("ipc check leaves tcp, abstract and over-long endpoints alone", "[common][ipc]") {
  CHECK(zwq::check_ipc_path("tcp://127.0.0.1:5555").kind == IpcCheck::kNone);
  CHECK(zwq::probe_ipc_endpoint("tcp://127.0.0.1:5555").kind == IpcCheck::kNone);
  CHECK(zwq::check_ipc_path("ipc://@zwq-abstract").kind == IpcCheck::kNone);
  CHECK(zwq::check_ipc_path("ipc://").kind == IpcCheck::kNone);
  CHECK(zwq::check_ipc_path("ipc:///tmp/" + std::string(200, 'x')).kind == IpcCheck::kNone);
}

TEST_CASE(
    "ipc check tells a missing socket, a file that is not a socket, a socket no one listens on "
    "and a listening one apart",
    "[common][ipc]") {
  const zwq::test::TestDir dir("ipc-check");
  const std::string missing = "ipc://" + dir.path() + "/absent/control";
  const IpcCheck none = zwq::probe_ipc_endpoint(missing);
  CHECK(none.kind == IpcCheck::kMissing);
  CHECK_FALSE(none.lasting());
  CHECK(none.why.find(dir.path() + "/absent/control") != std::string::npos);

  const std::string file = dir.path() + "/plain";
  std::ofstream(file) << "not a socket";
  const IpcCheck plain = zwq::check_ipc_path("ipc://" + file);
  CHECK(plain.kind == IpcCheck::kNotSocket);
  CHECK(plain.lasting());

  const std::string path = dir.path() + "/control";
  {
    BoundSocket listener(path, true);
    CHECK(zwq::check_ipc_path("ipc://" + path).kind == IpcCheck::kNone);
    CHECK(zwq::probe_ipc_endpoint("ipc://" + path).kind == IpcCheck::kNone);
  }
  // Closed, its file stays: only a connect tells that no one listens.
  CHECK(zwq::check_ipc_path("ipc://" + path).kind == IpcCheck::kNone);
  const IpcCheck stale = zwq::probe_ipc_endpoint("ipc://" + path);
  CHECK(stale.kind == IpcCheck::kRefused);
  CHECK_FALSE(stale.lasting());
  CHECK(stale.why.find("nothing listens on " + path) != std::string::npos);
}

TEST_CASE(
    "ipc check tells another user that a 0770 socket or a closed directory keeps it out, and "
    "that is lasting",
    "[common][ipc]") {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "skipped: another user's view needs root\n");
    std::_Exit(77);
  }
  const zwq::test::TestDir dir("ipc-check");
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  const std::string path = dir.path() + "/control";
  BoundSocket listener(path, true);
  REQUIRE(::chmod(path.c_str(), 0777) == 0);
  CHECK(outsider_check("ipc://" + path).kind == IpcCheck::kNone);  // open to all: no false alarm

  REQUIRE(::chmod(path.c_str(), 0770) == 0);
  const IpcCheck group_only = outsider_check("ipc://" + path);
  CHECK(group_only.kind == IpcCheck::kDenied);
  CHECK(group_only.lasting());
  CHECK(group_only.why.find("permission denied: " + path + " is srwxrwx--- root:root") !=
        std::string::npos);
  CHECK(group_only.why.find("its users belong to group root") != std::string::npos);
  CHECK(zwq::check_ipc_path("ipc://" + path).kind == IpcCheck::kNone);  // root: its owner

  REQUIRE(::chmod(path.c_str(), 0777) == 0);
  REQUIRE(::chmod(dir.path().c_str(), 0700) == 0);
  const IpcCheck closed = outsider_check("ipc://" + path);
  CHECK(closed.kind == IpcCheck::kDenied);
  CHECK(closed.why.find("may not open the directory " + dir.path() + " (drwx------ root:root)") !=
        std::string::npos);
}
