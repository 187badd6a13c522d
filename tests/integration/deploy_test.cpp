// deploy/zwq-cluster across hosts: network namespaces stand for a head host and two worker hosts
// (support/netns_hosts.hpp), the script reaches them with `ip netns exec` where a cluster uses
// ssh, and the workers talk to the broker over tcp across the namespaces' bridge. The dataset is
// a plain file, as on a shared filesystem: /dev/shm is not shared between real hosts.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "child_process.hpp"
#include "command.hpp"
#include "netns_hosts.hpp"
#include "process.hpp"
#include "processes.hpp"

using namespace zwq::test;
using Json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string kBin = ZWQ_TEST_BIN_DIR;
const std::string kScript = std::string(ZWQ_TEST_SOURCE_DIR) + "/deploy/zwq-cluster";
const std::string kBroker = std::string("tcp://") + NetnsHosts::kHeadAddress + ":5555";

// The zwq-cluster command line for `hosts`, with a hosts file of one worker per node.
struct Cluster {
  NetnsHosts& hosts;
  TestDir dir{"deploy"};
  std::string extra;  // more options
  std::string run_on = "ip netns exec {host} sh -s";

  std::string hosts_file() const { return dir.path() + "/hosts"; }
  void write_hosts(const std::string& text) const { std::ofstream(hosts_file()) << text; }
  std::string line(const std::string& command) const {
    return kScript + " --hosts " + hosts_file() + " --head " + hosts.head() + " --address " +
           NetnsHosts::kHeadAddress + " --run-on " + sh_quote(run_on) + " --bin-dir " + kBin +
           " --state-dir " + dir.path() + "/state --timeout 20 " + extra + " " + command;
  }
  CommandResult run(const std::string& command) const {
    return run_command(line(command) + " 2>&1");
  }
  // The worker process of a host that runs one: the pid file names its launcher
  // (zwq-worker --count 1 --respawn), whose only child it is.
  pid_t worker_pid(const std::string& host) const {
    pid_t launcher = 0;  // (the file holds the pid, then its start time)
    std::ifstream(dir.path() + "/state/zwq-cluster-" + std::to_string(::getuid()) + "/" + host +
                  "/worker.pid") >>
        launcher;
    pid_t worker = 0;
    const std::string id = std::to_string(launcher);
    std::ifstream("/proc/" + id + "/task/" + id + "/children") >> worker;
    return worker;
  }
};

// `zwq workers --json` asked on the head.
Json workers(const NetnsHosts& hosts) {
  const auto r = run_command(
      NetnsHosts::on(hosts.head(), kBin + "/zwq workers --broker tcp://127.0.0.1:5555 --json"));
  return r.exit_code == 0 ? Json::parse(r.out) : Json::array();
}

std::uint64_t slices_done_by(const Json& list, pid_t pid) {
  for (const auto& w : list) {
    if (w.at("pid").get<pid_t>() == pid) return w.at("slices_done").get<std::uint64_t>();
  }
  return 0;
}

}  // namespace

TEST_CASE(
    "deploy: zwq-cluster up puts a broker on the head and workers on two hosts, which sum a "
    "shared file over tcp exactly, and down leaves no process",
    "[integration][deploy]") {
  NetnsHosts hosts("up", 2);
  Cluster cluster{hosts};
  cluster.write_hosts("# host workers\n" + hosts.node(1) + " 1\n" + hosts.node(2) + "  1  # b\n");

  // 2^24 f32 values i % 1024 / 4: every partial and the total are exact in double.
  const std::string data = cluster.dir.path() + "/data.f32";
  constexpr std::uint64_t kCount = std::uint64_t{1} << 24;
  double expected = 0;
  {
    std::vector<float> v(kCount);
    for (std::uint64_t i = 0; i < kCount; ++i) {
      v[i] = static_cast<float>(i % 1024) * 0.25f;
      expected += static_cast<double>(v[i]);
    }
    std::ofstream(data, std::ios::binary)
        .write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(kCount * 4));
  }

  const auto up = cluster.run("up");
  INFO(up.out);
  REQUIRE(up.exit_code == 0);
  CHECK(up.out.find("ZWQ_BROKER=" + kBroker) != std::string::npos);
  CHECK(up.out.find("2 workers on 2 host(s) registered") != std::string::npos);
  const auto again = cluster.run("up");  // a second broker is refused, the first left alone
  CHECK(again.exit_code == 2);
  CHECK(again.out.find("a broker runs already") != std::string::npos);

  // A client on a worker host, as any machine of the cluster may submit.
  const auto job = run_command(NetnsHosts::on(
      hosts.node(1), kBin + "/zwq submit --broker " + kBroker + " --kernel sum --input " + data +
                         " --dtype f32 --slice 65536 --json"));
  INFO(job.out);
  REQUIRE(job.exit_code == 0);
  const Json r = Json::parse(job.out);
  CHECK(r.at("state") == "done");
  CHECK(r.at("value").get<double>() == expected);
  CHECK(r.at("total_slices").get<int>() == 256);

  // Both hosts' workers computed part of it (the pid files say which worker runs where).
  const Json list = workers(hosts);
  INFO(list.dump());
  REQUIRE(list.size() == 2);
  CHECK(slices_done_by(list, cluster.worker_pid(hosts.node(1))) > 0);
  CHECK(slices_done_by(list, cluster.worker_pid(hosts.node(2))) > 0);

  const auto status = cluster.run("status");
  INFO(status.out);
  CHECK(status.exit_code == 0);
  CHECK(status.out.find(hosts.node(2) + ": workers running") != std::string::npos);

  const auto down = cluster.run("down");
  INFO(down.out);
  CHECK(down.exit_code == 0);
  CHECK(hosts.pids().empty());
  const auto after = cluster.run("status");
  CHECK(after.exit_code == 1);
  CHECK(after.out.find(hosts.node(1) + ": no workers") != std::string::npos);
  CHECK(after.out.find(hosts.head() + ": no broker") != std::string::npos);
}

TEST_CASE(
    "deploy: a worker host cut off the network mid-job loses no slice: the other host computes "
    "its slices, each counted once, and it rejoins when its cable is back",
    "[integration][deploy]") {
  NetnsHosts hosts("cut", 2);
  Cluster cluster{hosts};
  cluster.extra = "--broker-arg=--heartbeat-ms=100 --broker-arg=--liveness=3";
  cluster.write_hosts(hosts.node(1) + " 1\n" + hosts.node(2) + " 1\n");
  const auto up = cluster.run("up");
  INFO(up.out);
  REQUIRE(up.exit_code == 0);

  // 200 slices of 20 ms: about 2 s on two workers. The result counts the points once each.
  const std::string id = "cut-" + std::to_string(::getpid());
  FILE* submit = ::popen(NetnsHosts::on(hosts.node(1), kBin + "/zwq submit --broker " + kBroker +
                                                           " --kernel sleep -p ms=20 --range 0:200"
                                                           " --slice 1 --timeout 60 --json"
                                                           " --job-id " +
                                                           id)
                             .c_str(),
                         "r");
  REQUIRE(submit != nullptr);
  const pid_t cut_off = cluster.worker_pid(hosts.node(2));
  const bool started = eventually([&] { return slices_done_by(workers(hosts), cut_off) >= 5; });
  if (started) hosts.set_link(2, false);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, submit)) > 0;) out.append(buf, n);
  const int rc = ::pclose(submit);
  INFO(out);
  REQUIRE(started);
  REQUIRE(rc == 0);
  const Json r = Json::parse(out);
  CHECK(r.at("state") == "done");
  CHECK(r.at("value").get<double>() == 200);

  const auto st = run_command(NetnsHosts::on(
      hosts.node(1), kBin + "/zwq status --broker " + kBroker + " " + id + " --json"));
  INFO(st.out);
  REQUIRE(st.exit_code == 0);
  const Json s = Json::parse(st.out);
  CHECK(s.at("done").get<int>() == 200);
  CHECK(s.at("retried").get<int>() >= 1);  // what the cut-off worker held went elsewhere

  // With its cable back, the worker finds the broker again and registers anew.
  hosts.set_link(2, true);
  CHECK(eventually([&] { return workers(hosts).size() == 2; }));
  CHECK(cluster.run("down").exit_code == 0);
  CHECK(hosts.pids().empty());
}

TEST_CASE(
    "deploy: a job over /dev/shm runs on the workers of the host that submitted it, and one from "
    "a host without workers is refused, naming that host",
    "[integration][deploy]") {
  NetnsHosts hosts("route", 2);
  hosts.name_hosts();  // each with its own host name and /dev/shm, as real hosts have
  Cluster cluster{hosts};
  cluster.run_on = hosts.named_run_on();
  cluster.write_hosts(hosts.node(1) + " 1\n" + hosts.node(2) + " 1\n");
  const auto up = cluster.run("up");
  INFO(up.out);
  REQUIRE(up.exit_code == 0);
  const pid_t w1 = cluster.worker_pid(hosts.node(1));
  const pid_t w2 = cluster.worker_pid(hosts.node(2));
  const Json listed = workers(hosts);
  INFO(listed.dump());
  REQUIRE(listed.size() == 2);
  for (const auto& w : listed) {
    CHECK(w.at("host") == hosts.node(w.at("pid").get<pid_t>() == w1 ? 1 : 2));
  }
  CHECK(listed.at(0).at("memory") != listed.at(1).at("memory"));

  // An array of one name in each host's /dev/shm, of 1s on node 1, 2s on node 2 and 3s on the
  // head: each sum says whose memory the workers read.
  const std::string name = "zwq-route-" + std::to_string(::getpid());
  for (const auto& [host, value] :
       {std::pair{hosts.node(1), 1}, std::pair{hosts.node(2), 2}, std::pair{hosts.head(), 3}}) {
    REQUIRE(run_command(hosts.named(host, kBin + "/zwq array create " + name +
                                              " --dtype f32 -n 1000000 --fill const --value " +
                                              std::to_string(value)))
                .exit_code == 0);
  }
  const std::string submit = kBin + "/zwq submit --broker " + kBroker +
                             " --kernel sum --input shm:" + name + " --slice 10000 --json";
  auto from = [&](const std::string& host) {
    const auto r = run_command(hosts.named(host, submit + " 2>&1"));
    INFO(r.out);
    return r;
  };
  const auto on1 = from(hosts.node(1));
  REQUIRE(on1.exit_code == 0);
  CHECK(Json::parse(on1.out).at("value").get<double>() == 1'000'000.0);
  CHECK(slices_done_by(workers(hosts), w1) == 100);
  CHECK(slices_done_by(workers(hosts), w2) == 0);  // idle all along, and given none

  const auto on2 = from(hosts.node(2));
  REQUIRE(on2.exit_code == 0);
  CHECK(Json::parse(on2.out).at("value").get<double>() == 2'000'000.0);
  CHECK(slices_done_by(workers(hosts), w1) == 100);
  CHECK(slices_done_by(workers(hosts), w2) == 100);

  const auto on_head = from(hosts.head());
  CHECK(on_head.exit_code != 0);
  CHECK(on_head.out.find("dataset_missing") != std::string::npos);
  CHECK(on_head.out.find("host '" + hosts.head() + "' (memory ") != std::string::npos);
  CHECK(on_head.out.find("where no worker with kernel 'sum' runs") != std::string::npos);
  CHECK(cluster.run("down").exit_code == 0);
}

TEST_CASE(
    "deploy: zwq-cluster refuses a bad hosts file, up names the logs when workers fail, and it "
    "skips and names a host it cannot reach",
    "[integration][deploy]") {
  NetnsHosts hosts("bad", 1);
  Cluster cluster{hosts};
  cluster.write_hosts(hosts.node(1) + " two\n");
  const auto bad = cluster.run("up");
  CHECK(bad.exit_code == 2);
  CHECK(bad.out.find("bad worker count for " + hosts.node(1)) != std::string::npos);
  CHECK(hosts.pids().empty());  // nothing was started

  // A worker that exits at start (its credit must be at least 1): up waits --timeout, then says
  // where to look, and down stops the broker it started.
  cluster.write_hosts(hosts.node(1) + " 1\n");
  cluster.extra = "--worker-arg=--credit=0 --timeout 2";
  const auto failed = cluster.run("up");
  INFO(failed.out);
  CHECK(failed.exit_code == 2);
  // However soon it exits, `up` shows the end of its log, which names the refused option.
  CHECK(failed.out.find("worker.log") != std::string::npos);
  CHECK(failed.out.find("--credit") != std::string::npos);
  CHECK(cluster.run("down").exit_code == 0);
  CHECK(hosts.pids().empty());

  // A host that cannot be reached is named and skipped; the others run, and up exits 1.
  cluster.write_hosts("absent-host 1\n" + hosts.node(1) + " 1\n");
  cluster.extra = "";
  const auto partial = cluster.run("up");
  INFO(partial.out);
  CHECK(partial.exit_code == 1);
  CHECK(partial.out.find("1 workers on 1 host(s) registered") != std::string::npos);
  CHECK(partial.out.find("without workers: absent-host") != std::string::npos);
  CHECK(workers(hosts).size() == 1);
  cluster.write_hosts(hosts.node(1) + " 1\n");
  CHECK(cluster.run("down").exit_code == 0);
  CHECK(hosts.pids().empty());
}

TEST_CASE(
    "deploy: zwq-cluster reaches the worker hosts at once, so that one slow host does not hold up "
    "the others, in up, status and down",
    "[integration][deploy]") {
  NetnsHosts hosts("par", 2);
  Cluster cluster{hosts};
  cluster.write_hosts(hosts.node(1) + " 1\n" + hosts.node(2) + " 1\n");
  // A run-on in which each worker host's turn waits (up to 5 s) until $3 (2) have arrived in the
  // barrier directory $1: reached one after another, the first would give up and mark it late.
  const std::string barrier = cluster.dir.path() + "/barrier";
  std::ofstream(barrier) << "d=$1 h=$2\n"
                         << "if [ \"$h\" != " << hosts.head() << " ]; then\n"
                         << "  mkdir -p \"$d\"; : >\"$d/$h\"; n=0\n"
                         << "  while [ \"$(ls \"$d\" | wc -l)\" -lt \"${3:-2}\" ]; do\n"
                         << "    n=$((n + 1)); [ $n -lt 100 ] || { : >\"$d.late\"; break; }\n"
                         << "    sleep 0.05\n"
                         << "  done\n"
                         << "fi\n"
                         << "exec ip netns exec \"$h\" sh -s\n";
  for (const std::string command : {"up", "status", "down"}) {
    const std::string at = cluster.dir.path() + "/" + command;
    cluster.run_on = "sh " + barrier + " " + at + " {host}";
    const auto r = cluster.run(command);
    INFO(command << ": " << r.out);
    CHECK(r.exit_code == 0);
    CHECK(std::filesystem::exists(at + "/" + hosts.node(1)));
    CHECK(std::filesystem::exists(at + "/" + hosts.node(2)));
    CHECK_FALSE(std::filesystem::exists(at + ".late"));
  }
  CHECK(hosts.pids().empty());

  // SIGTERM to the script while both turns wait (for a third host that never comes) stops them,
  // ssh (here the barrier) and all, before it exits.
  const std::string at = cluster.dir.path() + "/stopped";
  cluster.run_on = "sh " + barrier + " " + at + " {host} 3";
  Process script({"/bin/sh", "-c", "exec " + cluster.line("status")},
                 cluster.dir.path() + "/stopped.log");
  for (int i = 0; i < 500 && !(std::filesystem::exists(at + "/" + hosts.node(1)) &&
                               std::filesystem::exists(at + "/" + hosts.node(2)));
       ++i) {
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(std::filesystem::exists(at + "/" + hosts.node(2)));
  REQUIRE(::kill(script.pid(), SIGTERM) == 0);
  CHECK(script.wait_exit(3s) == std::optional<int>(143));
  int left = 0;  // processes still running the barrier
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string cmd;
    std::getline(std::ifstream(e.path() / "cmdline"), cmd);
    if (cmd.find(barrier) != std::string::npos) ++left;
  }
  CHECK(left == 0);
}

TEST_CASE(
    "deploy: zwq-cluster never signals a process whose start time is not its pid file's, as a "
    "reused pid's would not be",
    "[integration][deploy]") {
  NetnsHosts hosts("pid", 1);
  Cluster cluster{hosts};
  cluster.write_hosts(hosts.node(1) + " 1\n");
  REQUIRE(cluster.run("up").exit_code == 0);
  const std::string file = cluster.dir.path() + "/state/zwq-cluster-" + std::to_string(::getuid()) +
                           "/" + hosts.head() + "/broker.pid";
  unsigned long long since = 0;
  pid_t pid = 0;
  std::ifstream(file) >> pid >> since;
  REQUIRE(pid > 0);
  // The same pid, a zwq-broker still, but started at another time than the file says.
  std::ofstream(file) << pid << " " << since + 1 << "\n";
  const auto status = cluster.run("status");
  INFO(status.out);
  CHECK(status.exit_code == 1);
  CHECK(status.out.find(hosts.head() + ": no broker") != std::string::npos);
  const auto down = cluster.run("down");
  INFO(down.out);
  CHECK(down.exit_code == 0);
  // The workers were stopped (their file was right), the broker left alone: it still answers,
  // and lists no worker once it has their goodbyes.
  CommandResult asked;
  for (int i = 0; i < 100; ++i) {
    asked = run_command(
        NetnsHosts::on(hosts.head(), kBin + "/zwq workers --broker tcp://127.0.0.1:5555 --json"));
    if (asked.exit_code != 0 || asked.out.find("[]") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  CHECK(asked.exit_code == 0);
  CHECK(asked.out.find("[]") != std::string::npos);

  std::ofstream(file) << pid << " " << since << "\n";
  CHECK(cluster.run("down").exit_code == 0);
  CHECK(hosts.pids().empty());
}

TEST_CASE(
    "deploy: zwq-service runs the broker and the workers with the settings of deploy/zwq.env, "
    "and they sum an array",
    "[integration][deploy]") {
  TestDir dir("service");
  // The example settings, with this test's own ipc directory and journal instead of /run/zwq and
  // /var/lib/zwq; the rest (worker arguments) as shipped.
  const std::string config = dir.path() + "/zwq.env";
  const std::string address = "ipc://" + dir.path() + "/sock/control";
  {
    std::ifstream example(std::string(ZWQ_TEST_SOURCE_DIR) + "/deploy/zwq.env");
    REQUIRE(example);
    std::ofstream out(config);
    out << example.rdbuf() << "\nZWQ_BIND=" << address << "\nZWQ_BROKER=" << address
        << "\nZWQ_JOURNAL=" << dir.path() << "/journal\nZWQ_WORKERS=2\n"
        << "ZWQ_BROKER_ARGS=\"--log-level warn\"\n"
        << "ZWQ_WORKER_ARGS=\"$ZWQ_WORKER_ARGS --log-level warn\"\n";
  }
  const std::string service = std::string(ZWQ_TEST_SOURCE_DIR) + "/deploy/zwq-service";
  // Settings it cannot read stop it, rather than start it on defaults.
  const auto unread =
      run_command("ZWQ_CONFIG=" + dir.path() + "/absent " + service + " broker 2>&1");
  CHECK(unread.exit_code == 2);
  CHECK(unread.out.find("cannot read " + dir.path() + "/absent") != std::string::npos);
  zwq::detail::SpawnOptions spawn;
  spawn.env = {"ZWQ_CONFIG=" + config, "ZWQ_BIN_DIR=" + kBin};
  spawn.stdout_to_stderr = true;
  auto broker = zwq::detail::ChildProcess::spawn(service, {"broker"}, spawn);
  REQUIRE(broker.ok());
  auto workers = zwq::detail::ChildProcess::spawn(service, {"worker"}, spawn);
  REQUIRE(workers.ok());

  auto client = zwq::Client::connect({.broker = address, .request_timeout = 30s});
  REQUIRE(client.ok());
  REQUIRE(wait_for_workers(client.value(), 2));
  auto a = make_array<float>("service", 1'000'000);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 1000);
  auto r = client.value().run(zwq::JobRequest::reduce("sum", a), kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().value == 499'500'000.0);  // 1000 runs of 0 + ... + 999

  // ZWQ_WORKER_ARGS reached the workers (--nice 10), and ZWQ_JOURNAL the broker.
  auto listed = client.value().workers();
  REQUIRE(listed.ok());
  REQUIRE(listed.value().size() == 2);
  for (const auto& w : listed.value()) {
    std::ifstream stat("/proc/" + std::to_string(w.pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string f;
    for (int i = 3; i <= 19 && fields >> f; ++i) {
    }
    CHECK(f == "10");  // field 19: nice
  }
  CHECK(std::filesystem::exists(dir.path() + "/journal/journal.zwq"));

  // SIGTERM, as systemd stops them: both exit cleanly.
  CHECK(workers.value().stop(std::chrono::milliseconds(10000)) == 0);
  CHECK(broker.value().stop(std::chrono::milliseconds(15000)) == 0);
}

TEST_CASE("deploy: systemd-analyze verify finds nothing wrong with the systemd units",
          "[integration][deploy]") {
  // The units as configured for installation name the installed zwq-service; verify wants the
  // command to exist, so copies name the source tree's.
  TestDir dir("units");
  std::string units;
  for (const char* name : {"zwq-broker.service", "zwq-worker.service"}) {
    std::ifstream in(std::string(ZWQ_TEST_UNIT_DIR) + "/" + name);
    REQUIRE(in);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string from = ZWQ_TEST_INSTALLED_SERVICE;
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), std::string(ZWQ_TEST_SOURCE_DIR) + "/deploy/zwq-service");
    std::ofstream(dir.path() + "/" + name) << text;
    units += " " + dir.path() + "/" + name;
  }
  const auto r = run_command("systemd-analyze verify" + units + " 2>&1");
  INFO(r.out);
  CHECK(r.exit_code == 0);
  // What it says of our units (it may also speak of the machine's own).
  CHECK(r.out.find("zwq-") == std::string::npos);
}
