// The `zwq` command line, end to end: arrays, `zwq local -- COMMAND`, submit --json, errors.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "cluster.hpp"
#include "command.hpp"
#include "process.hpp"
#include "processes.hpp"
#include "shm_file.hpp"

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
  const ShmFile array("cli");  // (removes the array if a check stops the test before `rm`)
  const std::string& name = array.name();
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

TEST_CASE("cli: array info, sum and fill read a .npy that numpy.save wrote, after its header",
          "[integration][cli]") {
  const ShmFile array("cli-npy");
  array.write(std::vector<std::int32_t>{3, -1, 7, 10}, npy_header("<i4", 4));
  const auto info = run_command(kZwq + " array info " + array.name() + " --json");
  INFO(info.out);
  REQUIRE(info.exit_code == 0);
  const auto j = nlohmann::json::parse(info.out);
  CHECK(j.at("dtype") == "i32");
  CHECK(j.at("count") == 4);
  CHECK(j.at("byte_offset") == 128);
  CHECK(std::stod(run_command(kZwq + " array sum " + array.name()).out) == 19.0);
  REQUIRE(run_command(kZwq + " array fill " + array.name() + " --value 2").exit_code == 0);
  CHECK(std::stod(run_command(kZwq + " array sum " + array.name()).out) == 8.0);
  const auto nothing = run_command(kZwq + " array fill " + array.name() + " 2>&1");
  CHECK(nothing.exit_code == 2);  // a fill that says nothing fills nothing
  CHECK(nothing.out.find("say what to fill with") != std::string::npos);
  std::ifstream in(array.path(), std::ios::binary);
  std::string magic(6, '\0');
  in.read(magic.data(), 6);
  CHECK(magic == "\x93NUMPY");  // the header is still there
  const auto wrong = run_command(kZwq + " array info " + array.name() + " --dtype f32 2>&1");
  CHECK(wrong.exit_code != 0);
  CHECK(wrong.out.find("holds i32, not f32") != std::string::npos);
}

TEST_CASE(
    "cli: a negative count, slice or timeout, a value the dtype cannot hold, a parameter no "
    "double holds, an address without tcp:// or ipc:// and an unknown command are usage errors, "
    "exit 2",
    "[integration][cli]") {
  const ShmFile array("cli-refused");
  const std::string at = " --broker ipc:///nonexistent-zwq-test/control";
  for (const std::string& command : std::vector<std::string>{
           " submit -k pi --count -5" + at, " submit -k pi --range 0:-5" + at,
           " submit -k pi --count 10 --slice -1" + at, " wait x --timeout -1" + at,
           " status --timeout -0.5" + at, " local --workers -1 -- true",
           " array create " + array.name() + " --dtype u8 -n 4 --value 300",
           " array create " + array.name() + " --dtype i32 -n 4 --value 2.5",
           " array create " + array.name() + " --dtype f32 -n 4 --value 1e39",
           " submit -k pi --count 10 -p x=1e400" + at,
           std::string(" submit -k pi --count 10 --broker 127.0.0.1:5555")}) {
    INFO(command);
    const auto r = run_command(kZwq + command + " 2>&1");
    INFO(r.out);
    CHECK(r.exit_code == 2);
    CHECK(r.out.find("within") == std::string::npos);  // refused before any wait
  }
  CHECK_FALSE(exists(array.path()));  // no array made for a value it could not hold
  const auto typo = run_command(kZwq + " sumbit -k pi 2>&1");
  CHECK(typo.exit_code == 2);
  CHECK(typo.out.find("unknown command 'sumbit' (commands: submit wait") != std::string::npos);
  // A small negative exponent is not a negative number.
  const auto wait = run_command(kZwq + " wait x --timeout 1e-1" + at + " 2>&1");
  CHECK(wait.exit_code == 1);
  CHECK(wait.out.find("within 250 ms") != std::string::npos);
  const auto fits =
      run_command(kZwq + " array create " + array.name() + " --dtype u8 -n 4 --value 255 && " +
                  kZwq + " array sum " + array.name());
  CHECK(fits.exit_code == 0);
  CHECK(fits.out.find("1020") != std::string::npos);
}

TEST_CASE(
    "cli: array create and fill take --value alone as const and --seed alone as random, and "
    "refuse one the named pattern would ignore",
    "[integration][cli]") {
  const ShmFile array("cli-value");
  const std::string create = kZwq + " array create " + array.name() + " --dtype f64 -n 10";
  REQUIRE(run_command(create + " --value 3").exit_code == 0);
  CHECK(std::stod(run_command(kZwq + " array sum " + array.name()).out) == 30.0);

  const std::string fill = kZwq + " array fill " + array.name();
  auto refused = run_command(fill + " --pattern arange --value 3 2>&1");
  INFO(refused.out);
  CHECK(refused.exit_code == 2);
  CHECK(refused.out.find("--value needs the const pattern, not 'arange'") != std::string::npos);
  refused = run_command(fill + " --pattern zero --seed 7 2>&1");
  CHECK(refused.exit_code == 2);
  CHECK(refused.out.find("--seed needs the random pattern, not 'zero'") != std::string::npos);
  CHECK(std::stod(run_command(kZwq + " array sum " + array.name()).out) == 30.0);  // untouched
  REQUIRE(run_command(fill + " --pattern const --value 0.5").exit_code == 0);
  CHECK(std::stod(run_command(kZwq + " array sum " + array.name()).out) == 5.0);
  ::unlink(array.path().c_str());
  refused = run_command(create + " --fill random --value 1 2>&1");
  CHECK(refused.exit_code == 2);
  CHECK_FALSE(exists(array.path()));  // refused before anything was made
}

TEST_CASE(
    "cli: a histogram's JSON names its bins, underflow and overflow apart, and its streamed "
    "slices, which keep no bins, say null",
    "[integration][cli]") {
  const ShmFile array("cli-hist");
  // 0, 1, ..., 99: 10 in each of 4 bins over [30, 70), 30 below and 30 above.
  REQUIRE(run_command(kZwq + " array create " + array.name() + " --dtype f64 -n 100 --fill arange")
              .exit_code == 0);
  const std::string hist =
      " submit -k histogram -i " + array.uri() + " -p lo=30 -p hi=70 -p bins=4 --slice 25";
  const auto out =
      run_command(kZwq + " local --workers 1 -- sh -c '" + kZwq + hist + " --json; " + kZwq + hist +
                  " --no-wait --job-id h >/dev/null && " + kZwq + " stream h'");
  INFO(out.out);
  REQUIRE(out.exit_code == 0);
  std::istringstream lines(out.out);
  std::string line;
  REQUIRE(std::getline(lines, line));
  const auto j = nlohmann::json::parse(line);
  CHECK(j.at("bins") == nlohmann::json::array({10, 10, 10, 10}));
  CHECK(j.at("underflow") == 30);
  CHECK(j.at("overflow") == 30);
  int slices = 0;
  while (std::getline(lines, line)) {
    const auto s = nlohmann::json::parse(line);
    CHECK(s.at("bins").is_null());
    CHECK(s.at("n") == 25);
    ++slices;
  }
  CHECK(slices == 4);
}

TEST_CASE("cli: a failing submit exits non-zero and names the error", "[integration][cli]") {
  auto out = run_command(kZwq + " local --workers 1 -- " + kZwq +
                         " submit --kernel sum --input shm:" + unique_name("absent") +
                         " --dtype f32 --json 2>&1");
  INFO(out.out);
  CHECK(out.exit_code == 1);
  CHECK(out.out.find("dataset_missing") != std::string::npos);
  // A misspelt parameter is refused, not ignored (the kernel would run on its defaults).
  out = run_command(kZwq + " local --workers 1 -- " + kZwq +
                    " submit --kernel pi --count 1000 --param step=2 2>&1");
  INFO(out.out);
  CHECK(out.exit_code == 1);
  CHECK(out.out.find("kernel 'pi' has no parameter 'step' (it takes none)") != std::string::npos);
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
  CHECK(timed_out.exit_code == 3);  // timed out, not failed: the job keeps running
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
  // An unknown id: one object too, and exit 1.
  const auto unknown = run_command(kZwq + " status nosuchjob --json" + at + " 2>/dev/null");
  CHECK(unknown.exit_code == 1);
  const auto u = nlohmann::json::parse(unknown.out);
  CHECK(u.at("job_id") == "nosuchjob");
  CHECK(u.at("state").is_null());
  CHECK(u.at("error").get<std::string>().find("unknown_job") != std::string::npos);

  // The id is taken: another range under it is refused, not answered with this job's result.
  auto other = run_command(kZwq + " submit --kernel primes --range 0:2000 --job-id waiter --json" +
                           " --timeout 60" + at);
  INFO(other.out);
  CHECK(other.exit_code == 1);
  CHECK(other.out.find("job id 'waiter' is taken by another job") != std::string::npos);
  CHECK(nlohmann::json::parse(other.out).at("value").is_null());
}

TEST_CASE(
    "cli: zwq wait and zwq stream take a job by id: its result once, and each slice's partial "
    "once, which add up to it",
    "[integration][cli]") {
  const ShmFile array("cli-wait");  // (removes the array if a check stops the test before `rm`)
  const std::string& name = array.name();
  REQUIRE(run_command(kZwq + " array create " + name + " --dtype f32 --count 1000000 --fill arange")
              .exit_code == 0);
  const std::string script = "id=$(" + kZwq + " submit --kernel sum --input shm:" + name +
                             " --slice 65536 --no-wait) && " + kZwq + " wait \"$id\" --json && " +
                             kZwq + " stream \"$id\" && " + kZwq + " wait \"$id\" && " + kZwq +
                             " wait no-such-job 2>&1; echo \"rc=$?\"; " + kZwq +
                             " wait no-such-job --json 2>/dev/null; echo \"rc=$?\"";
  // (Only the last command's stderr is read: a log line elsewhere would break the JSON lines.)
  auto out = run_command(kZwq + " local --workers 2 -- sh -c " + sh_quote(script));
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
  // With --json, one object still: the id, no state, and why.
  const std::size_t last = out.out.rfind("{\"");
  const auto unknown = nlohmann::json::parse(out.out.substr(last, out.out.find('\n', last) - last));
  CHECK(out.out.substr(out.out.find('\n', last) + 1) == "rc=1\n");
  CHECK(unknown.at("job_id") == "no-such-job");
  CHECK(unknown.at("state").is_null());
  CHECK(unknown.at("value").is_null());
  CHECK(unknown.at("error").get<std::string>().find("unknown_job") != std::string::npos);
  REQUIRE(run_command(kZwq + " array rm " + name).exit_code == 0);
}

namespace {

// Whether process `pid` has a handler for `sig` (SigCgt in /proc/PID/status): zwq wait's is
// there once it waits, so that a signal sent then reaches the handler, not the default action.
bool catches(pid_t pid, int sig) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("SigCgt:", 0) == 0) {
      return (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1)) & 1;
    }
  }
  return false;
}

bool wait_until_catches(pid_t pid, int sig) {
  for (int i = 0; i < 1000; ++i) {
    if (catches(pid, sig)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST_CASE(
    "cli: zwq wait rides out a broker restart with a journal, and Ctrl-C stops it waiting "
    "without cancelling the job",
    "[integration][cli]") {
  TestDir dir("cli-wait-restart");
  BrokerProcess broker(dir, {"--journal", dir.path() + "/journal"});
  broker.start();
  const std::string at = " --broker " + broker.address();
  REQUIRE(run_command(kZwq + " submit -k primes --range 0:100000 --job-id ride --no-wait" + at)
              .exit_code == 0);

  // Interrupted, it leaves the job as it was (queued: no worker yet).
  {
    Process waiting({kZwq, "wait", "ride", "--broker", broker.address()},
                    dir.path() + "/sigint.log");
    REQUIRE(wait_until_catches(waiting.pid(), SIGINT));
    ::kill(waiting.pid(), SIGINT);
    CHECK(waiting.wait_exit(std::chrono::seconds(20)) == std::optional<int>(130));
    CHECK(waiting.output().find("stopped waiting; job ride keeps running") != std::string::npos);
  }
  {  // SIGTERM alike, with the exit shells give it: 128 + 15
    Process waiting({kZwq, "wait", "ride", "--broker", broker.address()},
                    dir.path() + "/sigterm.log");
    REQUIRE(wait_until_catches(waiting.pid(), SIGTERM));
    ::kill(waiting.pid(), SIGTERM);
    CHECK(waiting.wait_exit(std::chrono::seconds(20)) == std::optional<int>(143));
  }
  auto st = nlohmann::json::parse(run_command(kZwq + " status ride --json" + at).out);
  CHECK(st.at("state") == "queued");

  // Killed and started again on its journal while zwq wait asks: the job is still there, and
  // once a worker comes the wait ends with its result.
  Process waiting({kZwq, "wait", "ride", "--json", "--broker", broker.address()},
                  dir.path() + "/wait.log");
  REQUIRE(wait_until_catches(waiting.pid(), SIGINT));
  broker.kill9();
  broker.start();
  WorkerProcesses workers(broker.address());
  workers.add();
  REQUIRE(waiting.wait_exit(std::chrono::seconds(60)) == std::optional<int>(0));
  INFO(waiting.output());
  auto r = nlohmann::json::parse(waiting.output().substr(waiting.output().find('{')));
  CHECK(r.at("state") == "done");
  CHECK(r.at("value").get<double>() == 9592.0);  // primes below 100000
}

TEST_CASE("cli: zwq stream gives up at --timeout even while results keep coming",
          "[integration][cli]") {
  // 40 slices of 100 ms on one worker: about 4 s of results, one every 100 ms.
  const std::string script = kZwq +
                             " submit -k sleep --range 0:40 --slice 1 -p ms=100 --job-id s "
                             "--no-wait >/dev/null && " +
                             kZwq + " stream s --timeout 0.5 >/dev/null; echo \"rc=$?\"";
  auto out = run_command(kZwq + " local --workers 1 -- sh -c " + sh_quote(script) + " 2>&1");
  INFO(out.out);
  CHECK(out.out.find("timeout: job s still running after") != std::string::npos);
  CHECK(out.out.find("rc=3") != std::string::npos);  // timed out: the job keeps running
}

TEST_CASE("cli: zwq shutdown ends zwq local cleanly: exit 0, and it says so, not an error",
          "[integration][cli]") {
  TestDir dir("cli-shutdown");
  const std::string address = "ipc://" + dir.path() + "/control";
  Process local({kZwq, "local", "--workers", "2", "--bind", address}, dir.path() + "/log");
  std::optional<zwq::Client> client;
  REQUIRE(eventually([&] {
    auto c = zwq::Client::connect({.broker = address, .request_timeout = 200ms});
    if (!c.ok()) return false;
    client.emplace(std::move(c).value());
    return true;
  }));
  REQUIRE(wait_for_workers(*client, 2));
  REQUIRE(client->shutdown_broker().ok());
  const auto status = local.wait_exit(20s);
  const std::string text = local.output();
  INFO(text);
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  CHECK(text.find("the local broker was shut down") != std::string::npos);
  CHECK(text.find("unreachable") == std::string::npos);
}

TEST_CASE(
    "cli: with --timeout, submit, wait, status ID and cancel ID give up on a broker that does not "
    "answer within it, --json still prints one object naming the error, and a listing prints "
    "nothing on stdout rather than an empty one",
    "[integration][cli]") {
  TestDir dir("cli-unreachable");
  const std::string at = " --broker ipc://" + dir.path() + "/control";  // no broker there
  for (const std::string command :
       {" submit -k pi --count 1000", " wait some-job", " status some-job", " cancel some-job"}) {
    INFO(command);
    const auto start = std::chrono::steady_clock::now();
    const auto r = run_command(kZwq + command + " --json --timeout 0.3" + at + " 2>/dev/null");
    const auto took = std::chrono::steady_clock::now() - start;
    INFO(r.out);
    CHECK(r.exit_code == 1);
    const auto j = nlohmann::json::parse(r.out);
    const bool by_id = command.find("some-job") != std::string::npos;
    CHECK(j.at("state").is_null() == by_id);
    if (by_id) CHECK(j.at("job_id") == "some-job");
    CHECK(j.at("error").get<std::string>().find("unreachable") != std::string::npos);
    CHECK(j.at("error").get<std::string>().find("300 ms") != std::string::npos);
    CHECK(took < 4s);  // not the 5 s request timeout
  }
  for (const std::string listing : {" status", " workers", " kernels"}) {
    INFO(listing);
    const auto r = run_command(kZwq + listing + " --json --timeout 0.3" + at + " 2>/dev/null");
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
  }
  const auto said = run_command(kZwq + " status --json --timeout 0.3" + at + " 2>&1 >/dev/null");
  CHECK(said.out.find("unreachable") != std::string::npos);  // on stderr
}

TEST_CASE(
    "cli: zwq status notes that a queued job a worker could take is behind older jobs, and "
    "says nothing of the running one",
    "[integration][cli]") {
  // One worker busy with 8 slices of 300 ms (it holds a few at a time): a later job waits.
  const auto out = run_command(
      kZwq + " local --workers 1 -- sh -c '" + kZwq +
      " submit -k sleep --range 0:8 --slice 1 -p ms=300 --job-id slow --no-wait >/dev/null && " +
      kZwq + " submit -k pi --count 1000 --job-id quick --no-wait >/dev/null && " + kZwq +
      " status; " + kZwq + " cancel slow >/dev/null; " + kZwq + " wait quick >/dev/null'");
  INFO(out.out);
  REQUIRE(out.exit_code == 0);
  std::istringstream lines(out.out);
  std::string slow, quick;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("slow ", 0) == 0) slow = line;
    if (line.rfind("quick ", 0) == 0) quick = line;
  }
  CHECK(quick.find("queued") != std::string::npos);
  CHECK(quick.find("behind 1 older job (the oldest goes first)") != std::string::npos);
  CHECK(slow.find("behind") == std::string::npos);
}
