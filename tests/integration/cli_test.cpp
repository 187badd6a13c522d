// The `zwq` command line, end to end: arrays, `zwq local -- COMMAND`, submit --json, errors.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cluster.hpp"
#include "command.hpp"
#include "processes.hpp"

using namespace zwq::test;

namespace {

const std::string kBin = ZWQ_TEST_BIN_DIR;
const std::string kZwq = kBin + "/zwq";

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

TEST_CASE("cli: array create, submit --json under zwq local, array rm", "[integration][cli]") {
  const std::string name = unique_name("cli");
  auto created =
      run_command(kZwq + " array create " + name + " --dtype f32 --count 1000000 --fill arange");
  REQUIRE(created.exit_code == 0);
  REQUIRE(exists("/dev/shm/" + name));

  auto out = run_command(kZwq + " local --workers 2 -- " + kZwq +
                         " submit --kernel sum --input shm:" + name + " --slice 65536 --json");
  INFO(out.out);
  REQUIRE(out.exit_code == 0);
  auto j = nlohmann::json::parse(out.out);
  CHECK(j.at("state") == "done");
  CHECK(j.at("value").get<double>() == 499999500000.0);  // 0 + 1 + ... + 999999, exact in f32
  CHECK(j.at("total_slices").get<int>() == 16);

  auto ref = run_command(kZwq + " array sum " + name);
  REQUIRE(ref.exit_code == 0);
  CHECK(std::stod(ref.out) == 499999500000.0);

  REQUIRE(run_command(kZwq + " array rm " + name).exit_code == 0);
  CHECK_FALSE(exists("/dev/shm/" + name));
  CHECK_FALSE(exists("/dev/shm/" + name + ".zwq-meta"));
}

TEST_CASE("cli: a failing submit exits non-zero and names the error", "[integration][cli]") {
  auto out = run_command(kZwq + " local --workers 1 -- " + kZwq +
                         " submit --kernel sum --input shm:" + unique_name("absent") +
                         " --dtype f32 --json 2>&1");
  INFO(out.out);
  CHECK(out.exit_code == 1);
  CHECK(out.out.find("dataset_missing") != std::string::npos);
}

TEST_CASE("cli: zwq local passes the command's exit code and ZWQ_BROKER", "[integration][cli]") {
  auto out = run_command(kZwq + " local --workers 1 -- sh -c 'echo \"$ZWQ_BROKER\"; exit 3'");
  CHECK(out.exit_code == 3);
  CHECK(out.out.rfind("ipc://", 0) == 0);
}

TEST_CASE("cli: range kernels and workers listing", "[integration][cli]") {
  auto out = run_command(kZwq + " local --workers 2 -- sh -c '" + kZwq +
                         " submit --kernel primes --range 0:1000000 --slice 100000 --json && " +
                         kZwq + " workers --json'");
  INFO(out.out);
  REQUIRE(out.exit_code == 0);
  const auto split = out.out.find('\n');
  auto job = nlohmann::json::parse(out.out.substr(0, split));
  CHECK(job.at("value").get<double>() == 78498.0);
  auto workers = nlohmann::json::parse(out.out.substr(split + 1));
  REQUIRE(workers.is_array());
  CHECK(workers.size() == 2);
}

TEST_CASE(
    "cli: a job no worker can take says why in zwq status and in submit's timeout, then runs "
    "once a worker registers",
    "[integration][cli]") {
  TestDir dir("cli-waiting");
  BrokerProcess broker(dir, {});
  broker.start();
  const std::string at = " --broker " + broker.address();

  auto timed_out = run_command(kZwq + " submit --kernel primes --range 0:1000 --job-id waiter" +
                               " --timeout 0.3" + at + " 2>&1");
  INFO(timed_out.out);
  CHECK(timed_out.exit_code == 1);
  CHECK(timed_out.out.find("(waiting: no worker is registered)") != std::string::npos);

  auto status = run_command(kZwq + " status waiter --json" + at);
  INFO(status.out);
  REQUIRE(status.exit_code == 0);
  auto j = nlohmann::json::parse(status.out);
  CHECK(j.at("state") == "queued");
  CHECK(j.at("waiting") == "no worker is registered");
  auto table = run_command(kZwq + " status" + at);
  CHECK(table.out.find("waiting: no worker is registered") != std::string::npos);

  // On a terminal 70 columns wide (script(1) gives it one), the progress bar says why once, on
  // a line of its own, and each redraw fits a row.
  auto bar = run_command("script -qec 'stty cols 70; " + kZwq +
                         " submit --kernel primes --range 0:1000 --job-id waiter --timeout 1.6" +
                         at + "' /dev/null");
  INFO(bar.out);
  const std::string reason = "zwq: job waiter waits: no worker is registered";
  const auto first = bar.out.find(reason);
  CHECK(first != std::string::npos);
  CHECK(bar.out.find(reason, first + 1) == std::string::npos);
  int redraws = 0;
  for (std::size_t at_bar = bar.out.find("\r\033[K["); at_bar != std::string::npos;
       at_bar = bar.out.find("\r\033[K[", at_bar + 1)) {
    const std::size_t begin = at_bar + 4;
    const std::size_t end = bar.out.find_first_of("\r\n", begin);
    const std::string drawn = bar.out.substr(begin, end - begin);
    CHECK(drawn.size() < 70);
    CHECK(drawn.find("waiting for") != std::string::npos);
    ++redraws;
  }
  CHECK(redraws >= 1);

  WorkerProcesses workers(broker.address());
  workers.add();
  auto done = run_command(kZwq + " submit --kernel primes --range 0:1000 --job-id waiter --json" +
                          " --timeout 60" + at);
  INFO(done.out);
  REQUIRE(done.exit_code == 0);
  auto d = nlohmann::json::parse(done.out);
  CHECK(d.at("value").get<double>() == 168.0);  // primes below 1000
  auto after = nlohmann::json::parse(run_command(kZwq + " status waiter --json" + at).out);
  CHECK(after.at("waiting") == "");
}

TEST_CASE(
    "cli: zwq wait and zwq stream take a job by id: its result once, and each slice's partial "
    "once, which add up to it",
    "[integration][cli]") {
  const std::string name = unique_name("cli-wait");
  REQUIRE(run_command(kZwq + " array create " + name + " --dtype f32 --count 1000000 --fill arange")
              .exit_code == 0);
  const std::string script = "id=$(" + kZwq + " submit --kernel sum --input shm:" + name +
                             " --slice 65536 --no-wait) && " + kZwq + " wait \"$id\" --json && " +
                             kZwq + " stream \"$id\" && " + kZwq + " wait \"$id\" && " + kZwq +
                             " wait no-such-job; echo \"rc=$?\"";
  auto out = run_command(kZwq + " local --workers 2 -- sh -c " + sh_quote(script) + " 2>&1");
  INFO(out.out);
  REQUIRE(out.exit_code == 0);
  std::istringstream lines(out.out);
  std::string line;
  REQUIRE(std::getline(lines, line));
  const auto waited = nlohmann::json::parse(line);
  CHECK(waited.at("state") == "done");
  CHECK(waited.at("value").get<double>() == 499999500000.0);
  CHECK(waited.at("total_slices").get<int>() == 16);
  CHECK(waited.at("n").get<int>() == 1000000);
  double total = 0;
  std::set<int> slices;
  while (std::getline(lines, line) && line.rfind("{", 0) == 0) {
    const auto s = nlohmann::json::parse(line);
    CHECK(slices.insert(s.at("slice").get<int>()).second);  // each slice once
    CHECK(s.at("first").get<std::uint64_t>() == s.at("slice").get<std::uint64_t>() * 65536);
    total += s.at("value").get<double>();
  }
  CHECK(slices.size() == 16);
  CHECK(total == 499999500000.0);       // exact: every partial is an integer below 2^53
  CHECK(line == "sum = 499999500000");  // zwq wait without --json
  CHECK(out.out.find("zwq: unknown_job: no job 'no-such-job'") != std::string::npos);
  CHECK(out.out.find("rc=1") != std::string::npos);
  REQUIRE(run_command(kZwq + " array rm " + name).exit_code == 0);
}
