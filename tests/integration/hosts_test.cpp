// Routing by memory: a job over a /dev/shm array goes only to workers that see that /dev/shm,
// whatever their host names. Workers "apart" run in a mount namespace with a /dev/shm of their
// own (support/own_memory.hpp), as on another machine given the same host name.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "cluster.hpp"
#include "command.hpp"
#include "own_memory.hpp"
#include "process.hpp"
#include "processes.hpp"

using namespace zwq;
using namespace zwq::test;
using namespace std::chrono_literals;

TEST_CASE(
    "hosts: a job over /dev/shm is refused, then runs exactly, but never on a worker of the same "
    "host name whose own /dev/shm holds a file of the same name",
    "[integration][hosts]") {
  OwnMemory::require_root();
  TestDir dir("hosts-apart");
  BrokerProcess broker(dir, {});
  broker.start();
  constexpr std::size_t kCount = 100'000;
  auto x = make_array<float>("hosts-apart", kCount);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 1.0f;
  const std::string name = x.ref().uri.substr(4);  // "shm:NAME"
  // Its own /dev/shm holds an array of that name, of 2s: were it given slices, the sum would
  // come out above kCount (or, had it no such file, the slices would fail).
  const std::string bin = ZWQ_TEST_BIN_DIR;
  OwnMemory apart_memory{.setup = bin + "/zwq array create " + name + " --dtype f32 -n " +
                                  std::to_string(kCount) + " --fill const --value 2"};
  Process apart(apart_memory.argv(
      {bin + "/zwq-worker", "--broker", broker.address(), "--log-level", "warn"}));
  auto client = Client::connect({.broker = broker.address(), .request_timeout = 30s});
  REQUIRE(client.ok());
  REQUIRE(wait_for_workers(client.value(), 1));
  auto listed = client.value().workers();
  REQUIRE(listed.ok());
  CHECK(listed.value()[0].host == host_name());
  CHECK(listed.value()[0].memory != memory_id());
  CHECK_FALSE(listed.value()[0].memory.empty());

  JobRequest req = JobRequest::reduce("sum", x);
  req.slice_size = 1000;
  // Only the worker apart is registered: the job is refused, naming the memory it is in.
  auto refused = client.value().submit(req);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kDatasetMissing);
  CHECK(refused.error().message.find(memory_id()) != std::string::npos);
  CHECK(refused.error().message.find("where no worker with kernel 'sum' runs") !=
        std::string::npos);

  WorkerProcesses here(broker.address());
  here.add();
  REQUIRE(wait_for_workers(client.value(), 2));
  auto r = client.value().run(req, kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().value == static_cast<double>(kCount));
  CHECK(r.value().merged.n == kCount);
  listed = client.value().workers();
  REQUIRE(listed.ok());
  for (const WorkerStatus& w : listed.value()) {
    INFO(w.worker_id << " memory " << w.memory);
    if (w.pid == static_cast<std::uint32_t>(apart.pid())) {
      CHECK(w.slices_done == 0);
    } else {
      CHECK(w.slices_done == 100);
      CHECK(w.memory == memory_id());
    }
  }
}

TEST_CASE(
    "hosts: zwq submit --here and Pool's here option keep a job over a file on this host's disk on "
    "this host's workers, without it a worker that lacks the file fails the job, and the error "
    "says --here",
    "[integration][hosts]") {
  OwnMemory::require_root();
  TestDir dir("hosts-here");
  BrokerProcess broker(dir, {});
  broker.start();
  TestDir data("hosts-here-data");
  const std::string path = data.path() + "/x.f32";
  {
    const std::vector<float> ones(1000, 1.0f);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(ones.data()),
               static_cast<std::streamsize>(ones.size() * sizeof(float)));
  }
  const std::string bin = ZWQ_TEST_BIN_DIR;
  // Another host, as far as this file goes: its own name, /dev/shm and (empty) data directory.
  OwnMemory elsewhere{.host = "elsewhere", .setup = "mount -t tmpfs zwq-own-dir " + data.path()};
  Process far(
      elsewhere.argv({bin + "/zwq-worker", "--broker", broker.address(), "--log-level", "warn"}));
  WorkerProcesses here(broker.address());
  here.add();
  auto client = Client::connect({.broker = broker.address(), .request_timeout = 30s});
  REQUIRE(client.ok());
  REQUIRE(wait_for_workers(client.value(), 2));

  const std::string submit = bin + "/zwq submit --broker " + broker.address() + " -k sum -i " +
                             path + " --dtype f32 --slice 1 --json";
  const auto shared = run_command(submit + " 2>&1");
  INFO(shared.out);
  CHECK(shared.exit_code == 1);
  CHECK(shared.out.find("dataset_missing") != std::string::npos);
  CHECK(shared.out.find("--here keeps the job on this host's workers") != std::string::npos);

  const auto kept = run_command(submit + " --here");
  INFO(kept.out);
  REQUIRE(kept.exit_code == 0);
  CHECK(nlohmann::json::parse(kept.out).at("value").get<double>() == 1000.0);

  // Pool's here option does the same, and its default chunksize counts only the worker here:
  // ceil(1000 / (4 * 1)) = 250 elements, 4 slices. (The file's length is probed: it is named by
  // path, not by a SharedArray that knows it.)
  auto pool = Pool::connect({.broker = broker.address(), .request_timeout = 30s});
  REQUIRE(pool.ok());
  auto job = pool.value().imap_unordered(JobRequest::reduce("sum", DatasetRef{path, DType::kF32}),
                                         {.here = true});
  REQUIRE(job.ok());
  CHECK(job.value().total_slices() == 4);
  auto r = job.value().wait(kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().value == 1000.0);
  CHECK(pool.value().workers(job.value().spec().input) == 1);
  // Without it, both workers count: 8 slices of 125.
  auto anywhere =
      pool.value().imap_unordered(JobRequest::reduce("sum", DatasetRef{path, DType::kF32}));
  REQUIRE(anywhere.ok());
  CHECK(anywhere.value().total_slices() == 8);
  CHECK(anywhere.value().spec().input.host.empty());
  (void)anywhere.value().cancel();
}
