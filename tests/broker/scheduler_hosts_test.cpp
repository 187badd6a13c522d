// A job over a file in one host's /dev/shm goes to the workers that see that /dev/shm only:
// workers elsewhere cannot read it, or would read another file of the same name. Jobs stamped
// with a memory id are routed by it (DatasetRef::memory); those of an older client, by host name.
#include <catch2/catch.hpp>

#include "scheduler_harness.hpp"

using namespace zwq;
using namespace zwq::broker;
using namespace zwq::broker::test;

namespace {

// A sum over 100 elements of shm:x, in the memory of `host` ("" for a shared file).
JobSpec shm_sum(const std::string& host, const std::string& memory = {}) {
  JobSpec spec;
  spec.kernel = "sum";
  spec.input.uri = "shm:x";
  spec.input.dtype = DType::kF32;
  spec.input.length = 100;
  spec.input.host = host;
  spec.input.memory = memory;
  spec.count = 100;
  spec.slice_size = 10;
  return spec;
}

void hello_on(Harness& h, const std::string& host, const std::string& id,
              std::vector<std::string> kernels = {}, const std::string& memory = {}) {
  msg::Hello m;
  m.worker_id = id;
  m.host = host;
  m.memory = memory;
  m.credit = 100;
  m.kernels = std::move(kernels);
  REQUIRE(h.sched.hello(m, h.now) != HelloVerdict::kRejected);
}

}  // namespace

TEST_CASE("scheduler sends a job in one host's memory to that host's workers only", "[broker]") {
  Harness h;
  hello_on(h, "node01", "w1");
  hello_on(h, "node02", "w2");
  REQUIRE(h.sched.submit(shm_sum("node02"), h.now).ok());
  const auto d = h.dispatch();
  CHECK(slices_in(d, "w2") == 10);
  CHECK(slices_in(d, "w1") == 0);  // idle, with credit to spare, and still given none

  // A file every host reads goes to both.
  REQUIRE(h.sched.submit(shm_sum(""), h.now).ok());
  const auto shared = h.dispatch();
  CHECK(slices_in(shared, "w1") > 0);
  CHECK(slices_in(shared, "w2") > 0);
}

TEST_CASE(
    "scheduler sends a job stamped with a memory to the workers of that memory, not to those of "
    "the same host name with another, and refuses it when none is registered",
    "[broker]") {
  Harness h;
  hello_on(h, "node01", "same-name", {}, "boot-b/0:26");  // another machine called node01
  hello_on(h, "renamed", "same-memory", {}, "boot-a/0:26");
  auto refused = h.sched.submit(shm_sum("node01", "boot-c/0:26"), h.now);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kDatasetMissing);
  CHECK(refused.error().message.find("host 'node01' (memory boot-c/0:26)") != std::string::npos);
  hello_on(h, "node01", "older-worker");  // says no memory: matched by host name
  CHECK(h.sched.submit(shm_sum("node01", "boot-c/0:26"), h.now).ok());

  REQUIRE(h.sched.submit(shm_sum("node01", "boot-a/0:26"), h.now).ok());
  const auto d = h.dispatch();
  CHECK(slices_in(d, "same-name") == 0);
  CHECK(slices_in(d, "same-memory") + slices_in(d, "older-worker") == 20);
  CHECK(slices_in(d, "same-memory") > 0);
}

TEST_CASE(
    "scheduler refuses a job in the memory of a host where no worker runs, naming it, but keeps "
    "one that comes before any worker",
    "[broker]") {
  Harness h;
  CHECK(h.sched.submit(shm_sum("node03"), h.now).ok());  // no worker yet: it waits, as any job
  hello_on(h, "node01", "w1");
  auto refused = h.sched.submit(shm_sum("node03"), h.now);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kDatasetMissing);
  CHECK(refused.error().message.find("'shm:x'") != std::string::npos);
  CHECK(refused.error().message.find("'node03'") != std::string::npos);
  CHECK(slices_in(h.dispatch()) == 0);  // node01's worker gets neither job
  // A worker there without the job's kernel does not count either.
  hello_on(h, "node03", "w3-ranges", {"count_range"});
  CHECK_FALSE(h.sched.submit(shm_sum("node03"), h.now).ok());
  hello_on(h, "node03", "w3");
  CHECK(h.sched.submit(shm_sum("node03"), h.now).ok());
  const auto d = h.dispatch();
  CHECK(slices_in(d, "w3") == 20);  // the waiting job and the new one
  CHECK(slices_in(d, "w3-ranges") == 0);
}

TEST_CASE("scheduler keeps a job of a host whose workers left until one is back", "[broker]") {
  Harness h;
  hello_on(h, "node01", "w1");
  hello_on(h, "node02", "w2");
  REQUIRE(h.sched.submit(shm_sum("node02"), h.now).ok());
  h.sched.bye("w2", h.now);
  CHECK(slices_in(h.dispatch()) == 0);  // node01's worker may not take it
  hello_on(h, "node02", "w2-again");
  CHECK(slices_in(h.dispatch(), "w2-again") == 10);
}

TEST_CASE(
    "scheduler status says why a job waits (no worker at all, none with its kernel, none on its "
    "host) and says nothing once a worker could take it",
    "[broker]") {
  Harness h;
  REQUIRE(h.sched.submit(shm_sum("node02"), h.now).ok());
  JobSpec other = shm_sum("node02");  // of the same host and kernel, over another file
  other.input.uri = "shm:y";
  REQUIRE(h.sched.submit(other, h.now).ok());
  const std::string id = h.sched.all_status(h.now).front().job_id;
  CHECK(h.status(id).waiting == "no worker is registered");

  hello_on(h, "node02", "w2-ranges", {"count_range"});
  CHECK(h.status(id).waiting.find("kernel 'sum' can read 'shm:x' on host 'node02'") !=
        std::string::npos);
  CHECK(h.status(id).waiting.find("'shm:x'") != std::string::npos);

  // A shared file, by kernel alone; all_status says the same as status, each job naming its
  // own dataset.
  REQUIRE(h.sched.submit(shm_sum(""), h.now).ok());
  const auto all = h.sched.all_status(h.now);
  REQUIRE(all.size() == 3);
  CHECK(all[0].waiting == h.status(id).waiting);
  CHECK(all[1].waiting == h.status(all[1].job_id).waiting);
  CHECK(all[1].waiting.find("'shm:y'") != std::string::npos);
  CHECK(all[2].waiting == "no registered worker has kernel 'sum'");

  hello_on(h, "node01", "w1");  // takes the shared job only
  CHECK(h.status(all[2].job_id).waiting.empty());
  CHECK_FALSE(h.status(id).waiting.empty());
  hello_on(h, "node02", "w2");
  CHECK(h.status(id).waiting.empty());
  h.dispatch();
  CHECK(h.status(id).inflight == 10);
  CHECK(h.status(all[1].job_id).waiting.empty());
  CHECK(h.status(id).waiting.empty());

  // Its host's workers leave with its slices: it waits again, and says so.
  h.sched.bye("w2", h.now);
  CHECK(h.status(id).inflight == 0);
  CHECK(h.status(id).waiting.find("host 'node02'") != std::string::npos);
}

TEST_CASE(
    "scheduler status of all jobs tells two jobs of one host name and two memories apart: one can "
    "be taken, the other waits and names its memory",
    "[broker]") {
  Harness h;
  hello_on(h, "node01", "w-a", {}, "boot-a/0:26");
  REQUIRE(h.sched.submit(shm_sum("node01", "boot-a/0:26"), h.now).ok());
  hello_on(h, "node01", "w-b", {}, "boot-b/0:26");  // (so that the second is accepted)
  REQUIRE(h.sched.submit(shm_sum("node01", "boot-b/0:26"), h.now).ok());
  h.sched.bye("w-b", h.now);
  const auto all = h.sched.all_status(h.now);  // one lookup per (kernel, place)
  REQUIRE(all.size() == 2);
  CHECK(all[0].waiting.empty());
  CHECK(all[1].waiting.find("host 'node01' (memory boot-b/0:26)") != std::string::npos);
  CHECK(all[1].waiting == h.status(all[1].job_id).waiting);
}

TEST_CASE(
    "scheduler status counts the older jobs ahead of a queued one by its own workers, not the "
    "jobs of another host's",
    "[broker]") {
  Harness h;
  hello_on(h, "node01", "w1");
  hello_on(h, "node02", "w2");
  // Oldest first: a, b on node01; c on node02; d a shared file; e on node02. Nothing is
  // dispatched, so all five have slices to hand out and none in flight.
  std::vector<std::string> ids;
  for (const char* host : {"node01", "node01", "node02", "", "node02"}) {
    auto r = h.sched.submit(shm_sum(host), h.now);
    REQUIRE(r.ok());
    ids.push_back(r.value().job_id);
  }
  // w2 serves c, d, e in turn: e is behind 2 (not the 4 older jobs); d is behind w2's one (c),
  // fewer than w1's two (a, b).
  const std::vector<std::uint64_t> expected{0, 1, 0, 1, 2};
  const auto all = h.sched.all_status(h.now);
  REQUIRE(all.size() == 5);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    INFO("job " << i);
    CHECK(all[i].job_id == ids[i]);
    CHECK(all[i].ahead == expected[i]);
    // One job's status request works it out alike; its status in other replies leaves it out.
    CHECK(h.sched.status_with_ahead(h.job(ids[i]), h.now).ahead == expected[i]);
    CHECK(h.status(ids[i]).ahead == 0);
  }

  // Once a job's slices are in flight it is not waiting for anyone, and nothing is ahead of any.
  h.dispatch();
  for (const auto& st : h.sched.all_status(h.now)) CHECK(st.ahead == 0);
}
