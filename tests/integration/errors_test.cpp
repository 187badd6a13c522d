// Bad jobs and bad bytes get clear errors, and the broker goes on serving the next job.
#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cluster.hpp"
#include "raw_socket.hpp"

using namespace zwq;
using namespace zwq::test;

namespace {

// After each bad request the same cluster must still compute a good job.
void check_still_serves(Client& c) {
  auto a = make_array<std::int32_t>("after", 1000);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::int32_t>(i);
  auto r = c.run(JobRequest::reduce("sum", a), kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().value == 999.0 * 1000.0 / 2.0);
}

// The cluster's worker processes as they are now, to tell later that none of them died: zwq
// local replaces a worker a signal killed, so a live cluster alone proves nothing.
std::vector<pid_t> worker_pids(LocalCluster& cluster) {
  auto ws = cluster.client().workers();
  REQUIRE(ws.ok());
  std::vector<pid_t> pids;
  for (const WorkerStatus& w : ws.value()) pids.push_back(static_cast<pid_t>(w.pid));
  REQUIRE(pids.size() == static_cast<std::size_t>(cluster.workers()));
  return pids;
}

// Every process of `pids` still runs (is neither gone nor a zombie), and the cluster too.
void check_none_died(LocalCluster& cluster, const std::vector<pid_t>& pids) {
  REQUIRE(cluster.check().ok());
  for (const pid_t pid : pids) {
    INFO("worker process " << pid);
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    REQUIRE_FALSE(text.empty());
    CHECK(text.substr(text.rfind(')') + 2, 1) != "Z");
  }
}

}  // namespace

TEST_CASE("errors: each bad job is refused with its own code and the broker serves the next",
          "[integration]") {
  LocalCluster cluster(cluster_options(1));
  const std::vector<pid_t> pids = worker_pids(cluster);
  auto& c = cluster.client();
  auto a = make_array<double>("err", 100);

  SECTION("unknown kernel") {
    auto r = c.submit(JobRequest::reduce("no_such_kernel", a));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kUnknownKernel);
    CHECK(r.error().message.find("no_such_kernel") != std::string::npos);
  }
  SECTION("missing dataset") {
    JobRequest req;
    req.kernel = "sum";
    req.input = DatasetRef{"shm:" + unique_name("missing"), DType::kF32};
    auto r = c.submit(req);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kDatasetMissing);
  }
  SECTION("dataset too short") {
    JobRequest req = JobRequest::reduce("sum", a);
    req.count = 101;
    auto r = c.submit(req);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kDatasetTooShort);
  }
  SECTION("range outside the dataset") {
    JobRequest req = JobRequest::reduce("sum", a);
    req.first = 150;
    req.count = 1;
    auto r = c.submit(req);
    REQUIRE_FALSE(r.ok());
    CHECK((r.error().code == ErrorCode::kOutOfRange || r.error().code == ErrorCode::kDatasetTooShort));
  }
  SECTION("wrong dtype") {
    JobRequest req = JobRequest::reduce("sum", a);
    req.input.dtype = DType::kF32;
    auto r = c.submit(req);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kDtypeMismatch);
    CHECK(r.error().message.find("f64") != std::string::npos);
  }
  check_still_serves(c);
  check_none_died(cluster, pids);
}

TEST_CASE("errors: the broker itself refuses what a careless client sends", "[integration]") {
  LocalCluster cluster(cluster_options(1));
  const std::vector<pid_t> pids = worker_pids(cluster);
  RawControl raw(cluster.address());
  auto a = make_array<float>("raw", 64);

  auto expect_error = [&](const msg::SubmitReq& req, ErrorCode code) {
    auto rep = raw.ask(req);
    REQUIRE(rep.has_value());
    auto err = decode<msg::ErrorRep>(rep->data(), rep->size());
    REQUIRE(err.ok());
    CHECK(err.value().code == code);
    CHECK_FALSE(err.value().message.empty());
  };
  msg::SubmitReq base;
  base.job.job_id = "raw-job";
  base.job.kernel = "sum";
  base.job.input = a.ref();
  base.job.count = 64;

  SECTION("unknown kernel") {
    auto req = base;
    req.job.kernel = "nope";
    expect_error(req, ErrorCode::kUnknownKernel);
  }
  SECTION("elements past the dataset's length") {
    auto req = base;
    req.job.first = 10;
    expect_error(req, ErrorCode::kOutOfRange);
  }
  SECTION("a reduction without an input") {
    auto req = base;
    req.job.input = {};
    expect_error(req, ErrorCode::kInvalidArgument);
  }
  SECTION("a kernel's own parameter check") {
    auto req = base;
    req.job.kernel = "histogram";  // needs lo < hi
    expect_error(req, ErrorCode::kInvalidArgument);
  }
  check_still_serves(cluster.client());
  check_none_died(cluster, pids);
}

TEST_CASE("errors: a file truncated after submit fails the job, not the worker", "[integration]") {
  LocalCluster cluster(cluster_options(1));
  const std::vector<pid_t> pids = worker_pids(cluster);
  auto& c = cluster.client();
  const std::string name = unique_name("trunc");
  {
    auto a = SharedArray<float>::create(name, 1 << 20).value();
    a.release();
  }
  JobRequest req;
  req.kernel = "sum";
  req.input = DatasetRef{"shm:" + name, DType::kF32};
  req.count = 1 << 20;
  req.check_datasets = false;  // as if the file shrank between the check and the run
  REQUIRE(::truncate(("/dev/shm/" + name).c_str(), 4096) == 0);
  auto r = c.run(req, kJobTimeout);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kDatasetTooShort);
  CHECK(r.error().message.find(name) != std::string::npos);
  REQUIRE(ShmSegment::remove(name).ok());
  check_none_died(cluster, pids);  // the worker did not die of SIGBUS
  check_still_serves(c);
}

TEST_CASE("errors: a kernel failing on one slice fails its job only", "[integration]") {
  LocalCluster cluster(cluster_options(2));
  const std::vector<pid_t> pids = worker_pids(cluster);
  auto& c = cluster.client();
  JobRequest req = JobRequest::range("fail_at", 0, 1000).with("slice", 3);
  req.slice_size = 10;
  auto r = c.run(req, kJobTimeout);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kKernelFailed);
  CHECK(r.error().message.find("fail_at") != std::string::npos);
  check_none_died(cluster, pids);
  check_still_serves(c);
}

TEST_CASE("errors: garbage on every endpoint is answered or dropped, never fatal",
          "[integration]") {
  LocalCluster cluster(cluster_options(1));
  const std::vector<pid_t> pids = worker_pids(cluster);
  RawControl raw(cluster.address());
  const auto info = cluster.client().info();

  auto rep = raw.ask(std::string("\xff\x00garbage", 9));
  REQUIRE(rep.has_value());
  auto err = decode<msg::ErrorRep>(rep->data(), rep->size());
  REQUIRE(err.ok());
  CHECK(err.value().code == ErrorCode::kBadMessage);

  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(4);
  pk.pack(proto::kVersion + 5);
  pk.pack(static_cast<int>(proto::MsgType::kInfoReq));
  pk.pack(1);
  pk.pack_map(0);
  rep = raw.ask(std::string(buf.data(), buf.size()));
  REQUIRE(rep.has_value());
  err = decode<msg::ErrorRep>(rep->data(), rep->size());
  REQUIRE(err.ok());
  CHECK(err.value().code == ErrorCode::kVersionMismatch);

  send_raw(info.results, zmq::socket_type::push, "not a result");
  send_raw(info.results, zmq::socket_type::push, encode(msg::Results{.epoch = info.epoch + 1}));
  send_raw(info.tasks, zmq::socket_type::dealer, "not a hello");
  check_still_serves(cluster.client());
  check_none_died(cluster, pids);
}
