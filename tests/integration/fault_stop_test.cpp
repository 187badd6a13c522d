// Graceful stops: SIGTERM to a worker mid-job hands its slices back (nothing lost, nothing
// counted twice); Ctrl-C (SIGINT) to `zwq local` leaves no process, socket directory or /dev/shm
// file behind.
#include <dirent.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "processes.hpp"

using namespace zwq;
using namespace zwq::test;

namespace {

std::set<std::string> dev_shm_entries() {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm")) {
    out.insert(e.path().filename().string());
  }
  return out;
}

// Whether `name` holds `pid` as a whole number (as in "zwq-bench-123-cold-0").
bool names_pid(const std::string& name, pid_t pid) {
  const std::string digits = std::to_string(pid);
  for (std::size_t at = name.find(digits); at != std::string::npos;
       at = name.find(digits, at + 1)) {
    const bool starts = at == 0 || !std::isdigit(static_cast<unsigned char>(name[at - 1]));
    const std::size_t end = at + digits.size();
    const bool ends = end == name.size() || !std::isdigit(static_cast<unsigned char>(name[end]));
    if (starts && ends) return true;
  }
  return false;
}

}  // namespace

TEST_CASE(
    "fault: SIGTERM to a worker mid-job hands its slices back: nothing lost or counted "
    "twice",
    "[integration][fault]") {
  TestDir dir("sigterm-worker");
  BrokerProcess broker(dir, {"--heartbeat-ms", "50", "--liveness", "4"});
  broker.start();
  WorkerProcesses workers(broker.address());
  for (int i = 0; i < 3; ++i) workers.add({"--credit", "16"});
  auto client = Client::connect(ClientOptions{.broker = broker.address()});
  REQUIRE(client.ok());
  REQUIRE(wait_for_workers(client.value(), 3));
  // Slices of 5 ms, each reported as it ends: a worker holds a few queued beyond the one in hand
  // (pipeline_depth batches of one), refilled within 5 ms even on a loaded machine, so it has
  // slices to hand back when the SIGTERM comes. (Slices of a fraction of a ms go out a credit's
  // worth at a time, reported together: a worker is often between two such batches, holding
  // nothing queued.) The result counts every slice's points, each once.
  Params sleep_ms;
  sleep_ms.set("ms", std::int64_t{5});
  JobRequest req = JobRequest::range("sleep", 0, 600, sleep_ms);
  req.slice_size = 1;
  req.job_id = "reference";
  auto reference = client.value().run(req, kJobTimeout);
  REQUIRE(reference.ok());

  req.job_id = "handed-back";
  auto job = client.value().submit(req);
  REQUIRE(job.ok());
  REQUIRE(eventually([&] {
    auto st = job.value().progress();
    return st.ok() && st.value().done > 100;
  }));
  const auto stopped = std::chrono::steady_clock::now();
  workers.at(0).signal(SIGTERM);
  REQUIRE(workers.at(0).wait_until(stopped + std::chrono::seconds(5)));
  const double exit_ms = ms_since(stopped);
  CHECK(workers.at(0).exit_status() == 0);
  auto r = job.value().wait(kJobTimeout);
  REQUIRE(r.ok());
  CHECK(bits_of(r.value().value) == bits_of(reference.value().value));
  CHECK(r.value().merged.n == 600);  // every point once
  const JobStatus st = job.value().last_status();
  CHECK(st.done == st.total);
  CHECK(st.retried > 0);     // its queued slices were handed back (Bye) ...
  CHECK(st.discarded == 0);  // ... and the one in hand was finished and accepted, not redone
  std::printf(
      "figure: worker SIGTERM mid-job: it exited %.0f ms later (exit 0), handing back "
      "%llu slices with Bye; result bitwise equal, nothing discarded\n",
      exit_ms, static_cast<unsigned long long>(st.retried));
}

TEST_CASE("fault: Ctrl-C on zwq local leaves no process, socket or /dev/shm file behind",
          "[integration][fault]") {
  TestDir dir("local");
  const std::string sock = dir.path() + "/sock";
  const std::string address = "ipc://" + sock + "/control";
  const auto shm_before = dev_shm_entries();
  detail::SpawnOptions spawn;
  spawn.stdout_to_stderr = true;
  auto local = detail::ChildProcess::spawn(
      std::string(ZWQ_TEST_BIN_DIR) + "/zwq",
      {"local", "--workers", "2", "--bind", address, "--bin-dir", ZWQ_TEST_BIN_DIR}, spawn);
  REQUIRE(local.ok());
  std::optional<Client> client;
  REQUIRE(eventually([&] {
    auto c = Client::connect(
        ClientOptions{.broker = address, .request_timeout = std::chrono::milliseconds(200)});
    if (!c.ok()) return false;
    client.emplace(std::move(c).value());
    return true;
  }));
  REQUIRE(wait_for_workers(*client, 2));
  // A job through it, so that its workers have mapped something.
  auto a = make_array<float>("local", 1 << 20);
  for (auto& x : a) x = 1.0f;
  auto r = client->run(JobRequest::reduce("sum", a), kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().value == static_cast<double>(1 << 20));

  const pid_t root = local.value().pid();
  const std::vector<pid_t> tree = descendants(root);  // broker, worker launcher, workers
  CHECK(tree.size() >= 4);
  auto workers = client->workers();
  REQUIRE(workers.ok());
  for (const auto& w : workers.value()) {
    CHECK(std::find(tree.begin(), tree.end(), static_cast<pid_t>(w.pid)) != tree.end());
  }
  client.reset();
  CHECK(std::filesystem::exists(sock + "/control"));

  local.value().signal(SIGINT);
  REQUIRE(local.value().wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(10)));
  CHECK(local.value().exit_status() == 0);
  for (pid_t p : tree) {
    INFO("pid " << p);
    CHECK(eventually([&] { return gone(p); }, std::chrono::seconds(5)));
  }
  CHECK_FALSE(std::filesystem::exists(sock));  // the broker removed its socket directory
  // Nothing in /dev/shm that one of those processes would have named (by its pid).
  for (const auto& name : dev_shm_entries()) {
    if (shm_before.count(name) != 0) continue;
    for (pid_t p : tree) {
      INFO(name);
      CHECK_FALSE(names_pid(name, p));
    }
  }
}

TEST_CASE(
    "fault: a LocalCluster whose broker was killed still leaves no socket or directory behind",
    "[integration][fault]") {
  LocalClusterOptions o;
  o.workers = 1;
  o.bin_dir = ZWQ_TEST_BIN_DIR;
  o.log_level = "warn";
  std::optional<LocalCluster> cluster(std::in_place, o);
  const std::string address = cluster->address();
  REQUIRE(address.rfind("ipc://", 0) == 0);
  const std::string dir = address.substr(6, address.rfind('/') - 6);
  // The broker: the child of ours whose program is zwq-broker.
  pid_t broker = 0;
  for (pid_t p : descendants(::getpid())) {
    if (comm_of(p) == "zwq-broker") broker = p;
  }
  REQUIRE(broker != 0);
  REQUIRE(::kill(broker, SIGKILL) == 0);  // it cannot remove its sockets
  REQUIRE(eventually([&] { return !cluster->check().ok(); }, std::chrono::seconds(10)));
  CHECK(std::filesystem::exists(dir + "/control"));
  cluster.reset();
  CHECK_FALSE(std::filesystem::exists(dir));
  CHECK_FALSE(std::filesystem::exists(std::filesystem::path(dir).parent_path()));  // its own
}
