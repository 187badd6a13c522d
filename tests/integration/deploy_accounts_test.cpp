// The systemd units' account settings, run without systemd: the broker and the workers under an
// account of their own with UMask=0007, in a runtime directory of mode 0750 as
// RuntimeDirectory= makes it. What deploy/README.md promises of them: the sockets are open to the
// account's group, the journal to the account alone, the group's members submit jobs over
// arrays that `zwq array create` makes, and everyone else is told why they cannot.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "child_process.hpp"
#include "command.hpp"
#include "processes.hpp"
#include "shm_file.hpp"

using namespace zwq::test;
using namespace std::chrono_literals;

namespace {

// Accounts that need no entry in /etc/passwd: setpriv takes numbers.
constexpr unsigned kService = 61234;   // the units' User= and Group=
constexpr unsigned kMember = 61235;    // a user in the service's group
constexpr unsigned kOutsider = 61236;  // a user in no group of ours

std::string as_member() {
  return "setpriv --reuid=" + std::to_string(kMember) + " --regid=" + std::to_string(kMember) +
         " --groups=" + std::to_string(kService) + " ";
}
std::string as_outsider() {
  return "setpriv --reuid=" + std::to_string(kOutsider) + " --regid=" + std::to_string(kOutsider) +
         " --clear-groups ";
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st;
}

}  // namespace

TEST_CASE(
    "deploy: under the units' account and UMask the sockets are open to its group alone and the "
    "journal to it, a member sums and maps arrays, an outsider is told permission denied",
    "[integration][deploy]") {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "skipped: other accounts need root\n");
    std::_Exit(77);
  }
  TestDir dir("accounts");
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  const std::string run = dir.path() + "/run";  // RuntimeDirectory=zwq, RuntimeDirectoryMode=0750
  const std::string state = dir.path() + "/state";  // StateDirectory=zwq
  REQUIRE(::mkdir(run.c_str(), 0750) == 0);
  REQUIRE(::mkdir(state.c_str(), 0755) == 0);
  REQUIRE(::chown(run.c_str(), kService, kService) == 0);
  REQUIRE(::chown(state.c_str(), kService, kService) == 0);
  const std::string address = "ipc://" + run + "/control";
  const std::string config = dir.path() + "/zwq.env";
  std::ofstream(config) << "ZWQ_BIND=" << address << "\nZWQ_BROKER=" << address
                        << "\nZWQ_JOURNAL=" << state << "/journal\nZWQ_WORKERS=1\n"
                        << "ZWQ_BROKER_ARGS=\"--log-level warn\"\n"
                        << "ZWQ_WORKER_ARGS=\"--log-level warn\"\n";
  REQUIRE(::chmod(config.c_str(), 0644) == 0);

  const std::string service = std::string(ZWQ_TEST_SOURCE_DIR) + "/deploy/zwq-service";
  zwq::detail::SpawnOptions spawn;
  spawn.env = {"ZWQ_CONFIG=" + config, "ZWQ_BIN_DIR=" + std::string(ZWQ_TEST_BIN_DIR)};
  spawn.stdout_to_stderr = true;
  // setpriv execs the shell, which execs zwq-service, which execs the program: one pid to stop.
  // (A change of user clears the parent-death signal: setpriv sets it again.)
  const auto start = [&](const std::string& what) {
    const std::string id = std::to_string(kService);
    return zwq::detail::ChildProcess::spawn(
        "/usr/bin/setpriv",
        {"--reuid=" + id, "--regid=" + id, "--clear-groups", "--pdeathsig=TERM", "/bin/sh", "-c",
         "umask 0007; exec " + service + " " + what},
        spawn);
  };
  auto broker = start("broker");
  REQUIRE(broker.ok());
  auto workers = start("worker");
  REQUIRE(workers.ok());
  auto client = zwq::Client::connect({.broker = address, .request_timeout = 30s});
  REQUIRE(client.ok());
  REQUIRE(wait_for_workers(client.value(), 1));

  for (const char* name : {"control", "tasks", "results", "events"}) {
    INFO(name);
    const struct stat st = stat_of(run + "/" + name);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 07777) == 0770);
    CHECK(st.st_uid == kService);
  }
  const struct stat journal = stat_of(state + "/journal/journal.zwq");
  CHECK((journal.st_mode & 07777) == 0600);
  CHECK(journal.st_uid == kService);

  // A member of the group: an array of its own, read by the workers' account.
  ShmFile x("accounts-x");
  ShmFile y("accounts-y");
  const std::string zwq = std::string(ZWQ_TEST_BIN_DIR) + "/zwq";
  const std::string member = "ZWQ_BROKER=" + address + " " + as_member() + zwq;
  REQUIRE(run_command(member + " array create " + x.name() +
                      " --dtype f32 -n 100000 --fill const --value 1")
              .exit_code == 0);
  const auto sum = run_command(member + " submit -k sum -i " + x.uri() + " --json");
  INFO(sum.out);
  REQUIRE(sum.exit_code == 0);
  CHECK(nlohmann::json::parse(sum.out).at("value").get<double>() == 100000.0);

  // A map's output must be writable by the workers' account: 0644 is not, g+w with its group is.
  REQUIRE(run_command(member + " array create " + y.name() + " --dtype f32 -n 100000").exit_code ==
          0);
  const std::string affine =
      member + " submit -k affine -i " + x.uri() + " -o " + y.uri() + " --param a=2 --param b=1";
  const auto refused = run_command(affine + " 2>&1");
  INFO(refused.out);
  CHECK(refused.exit_code == 1);
  CHECK(refused.out.find("cannot open " + y.path() + ": Permission denied") != std::string::npos);
  REQUIRE(run_command(as_member() + "chgrp " + std::to_string(kService) + " " + y.path() + " && " +
                      as_member() + "chmod g+w " + y.path())
              .exit_code == 0);
  REQUIRE(run_command(affine).exit_code == 0);
  const auto mapped = run_command(member + " submit -k sum -i " + y.uri() + " --json");
  REQUIRE(mapped.exit_code == 0);
  CHECK(nlohmann::json::parse(mapped.out).at("value").get<double>() == 300000.0);

  // Anyone else: kept out by the runtime directory's mode, and told so without waiting for a
  // reply; with the directory open, by the socket's.
  const std::string outsider = "ZWQ_BROKER=" + address + " " + as_outsider() + zwq + " status 2>&1";
  const auto closed = run_command(outsider);
  INFO(closed.out);
  CHECK(closed.exit_code == 1);
  CHECK(closed.out.find("may not open the directory " + run + " (drwxr-x---") != std::string::npos);
  CHECK(closed.out.find("within") == std::string::npos);  // not a timeout
  REQUIRE(::chmod(run.c_str(), 0755) == 0);
  const auto socket_mode = run_command(outsider);
  INFO(socket_mode.out);
  CHECK(socket_mode.exit_code == 1);
  CHECK(socket_mode.out.find("permission denied: " + run + "/control is srwxrwx---") !=
        std::string::npos);
  CHECK(socket_mode.out.find("within") == std::string::npos);
  // An outsider's worker is a set-up failure (exit 1) at once too, not a wait for the broker.
  const auto worker = run_command(as_outsider() + std::string(ZWQ_TEST_BIN_DIR) +
                                  "/zwq-worker --broker " + address + " --log-level warn 2>&1");
  INFO(worker.out);
  CHECK(worker.exit_code == 1);
  CHECK(worker.out.find("permission denied: " + run + "/control is srwxrwx---") !=
        std::string::npos);
  CHECK(worker.out.find("within") == std::string::npos);

  CHECK(workers.value().stop(std::chrono::milliseconds(10000)) == 0);
  CHECK(broker.value().stop(std::chrono::milliseconds(15000)) == 0);
}
