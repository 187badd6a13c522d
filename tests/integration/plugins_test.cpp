// User kernels end to end: real workers load the test plugin (tests/plugins/test_kernels.cpp),
// the broker validates, routes and merges their jobs from the announced specs, and the Pool API
// runs them (starmap, apply_async, imap_unordered, wait with a timeout, cancel).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cluster.hpp"
#include "command.hpp"
#include "own_memory.hpp"
#include "process.hpp"
#include "processes.hpp"

#ifndef ZWQ_TEST_PLUGIN_DIR
#error "integration tests need ZWQ_TEST_PLUGIN_DIR (set by tests/CMakeLists.txt)"
#endif

using namespace zwq;
using namespace zwq::test;

namespace {

const std::string kBin = ZWQ_TEST_BIN_DIR;
const std::string kKernels = std::string(ZWQ_TEST_PLUGIN_DIR) + "/libzwq_test_kernels.so";

LocalClusterOptions with_plugin(int workers) {
  LocalClusterOptions o = cluster_options(workers);
  o.plugins = {kKernels};
  return o;
}

std::vector<Params> xs(std::initializer_list<double> values) {
  std::vector<Params> out;
  for (double v : values) {
    Params p;
    p.set("x", v);
    out.push_back(p);
  }
  return out;
}

std::size_t live_workers(Client& c) {
  auto ws = c.workers();
  return ws.ok() ? ws.value().size() : 0;
}

}  // namespace

TEST_CASE("plugins: each combiner of a plugin kernel is merged by the broker",
          "[integration][plugin]") {
  Pool pool(with_plugin(2));
  auto x = make_array<double>("plugin-combiners", 10'000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i) * 0.5 - 1000.0;
  const PoolOptions tenths{.chunksize = 1000, .timeout = kJobTimeout};
  auto run = [&](JobRequest r) {
    auto job = pool.submit(std::move(r), tenths);
    REQUIRE(job.ok());
    auto result = job.value().result(kJobTimeout);
    INFO((result.ok() ? std::string() : result.error().to_string()));
    REQUIRE(result.ok());
    return result.value();
  };
  const double n = 10'000;
  const double sum = 0.5 * n * (n - 1) / 2 - 1000.0 * n;
  CHECK(run(JobRequest::reduce("t_sum", x)).value == sum);
  CHECK(run(JobRequest::reduce("t_min", x)).value == -1000.0);
  CHECK(run(JobRequest::reduce("t_max", x)).value == 0.5 * (n - 1) - 1000.0);
  const JobResult moments = run(JobRequest::reduce("t_moments", x));
  CHECK(moments.value == Approx(sum / n));
  CHECK(moments.variance == Approx(0.25 * (n * n - 1) / 12));  // of 0.5 * uniform 0..n-1
  const JobResult hist =
      run(JobRequest::reduce("t_hist", x).with("lo", -1000.0).with("hi", 0.0).with("bins", 4));
  REQUIRE(hist.merged.bins.size() == 6);
  CHECK(hist.merged.bins[0] == 500);  // [-1000, -750): 500 elements of step 0.5
  CHECK(hist.merged.bins[3] == 500);
  CHECK(hist.merged.bins[4] == 0);     // underflow
  CHECK(hist.merged.bins[5] == 8000);  // overflow: [0, 3999.5]

  const JobResult gathered = run(JobRequest::reduce("t_gather", x));
  auto slices = unpack_gathered<std::vector<double>>(gathered.gathered);
  REQUIRE(slices.ok());
  REQUIRE(slices.value().size() == 10);  // [first element, count] per slice, in slice order
  for (std::size_t s = 0; s < 10; ++s) {
    CHECK(slices.value()[s] ==
          std::vector<double>{static_cast<double>(s * 1000) * 0.5 - 1000.0, 1000.0});
  }
}

TEST_CASE("plugins: pool starmap, apply_async, imap and imap_unordered run parameter sets",
          "[integration][plugin][pool]") {
  Pool pool(with_plugin(2));
  std::vector<Params> sets;
  for (int i = 0; i < 10; ++i) {
    Params p;
    p.set("x", static_cast<double>(i));
    sets.push_back(p);
  }
  SECTION("starmap returns one value per set, in set order, for any chunksize") {
    for (std::uint64_t chunk : {0, 1, 3, 10}) {
      auto squares =
          pool.starmap<double>("t_square", sets, {.chunksize = chunk, .timeout = kJobTimeout});
      REQUIRE(squares.ok());
      std::vector<double> expected;
      for (int i = 0; i < 10; ++i) expected.push_back(i * i);
      CHECK(squares.value() == expected);
    }
    Params shared;
    shared.set("offset", 1.0);
    auto shifted = pool.starmap<double>("t_square", xs({1, 2}), {.timeout = kJobTimeout}, shared);
    REQUIRE(shifted.ok());
    CHECK(shifted.value() == std::vector<double>{4, 9});
  }
  SECTION("apply_async gives one task's value through a future") {
    auto future = pool.apply_async<double>("t_square", xs({7})[0]);
    REQUIRE(future.ok());
    CHECK(future.value().get(kJobTimeout) == 49.0);
    CHECK(future.value().ready());
    CHECK(future.value().successful());
    auto applied = pool.apply<double>("t_square", xs({1.5})[0], kJobTimeout);
    REQUIRE(applied.ok());
    CHECK(applied.value() == 2.25);
  }
  SECTION("imap_unordered streams every task once, with its index") {
    auto stream =
        pool.imap_unordered<double>("t_square", sets, {.chunksize = 2, .timeout = kJobTimeout});
    REQUIRE(stream.ok());
    std::vector<std::pair<std::uint64_t, double>> seen;
    for (const auto& item : stream.value()) seen.push_back(item);
    std::sort(seen.begin(), seen.end());
    REQUIRE(seen.size() == 10);
    for (std::uint64_t i = 0; i < 10; ++i) {
      CHECK(seen[i].first == i);
      CHECK(seen[i].second == static_cast<double>(i * i));
    }
  }
  SECTION("imap gives every task's value in task order, holding back the ones that come early") {
    // Two workers take two tasks each: the first task sleeps 400 ms, the others 10, so tasks 2
    // and 3 come back before task 0 (imap_unordered gives them first).
    std::vector<Params> naps(4);
    for (std::size_t i = 0; i < naps.size(); ++i)
      naps[i].set("ms", std::int64_t{i == 0 ? 400 : 10});
    auto unordered = pool.imap_unordered<std::int64_t>("t_sleep", naps,
                                                       {.chunksize = 1, .timeout = kJobTimeout});
    REQUIRE(unordered.ok());
    std::vector<std::uint64_t> arrival;
    for (const auto& item : unordered.value()) arrival.push_back(item.first);
    REQUIRE(arrival.size() == 4);
    CHECK(arrival.front() != 0);  // the order imap has to restore

    auto ordered =
        pool.imap<std::int64_t>("t_sleep", naps, {.chunksize = 1, .timeout = kJobTimeout});
    REQUIRE(ordered.ok());
    std::vector<std::int64_t> values;
    for (std::int64_t v : ordered.value()) values.push_back(v);
    CHECK(values == std::vector<std::int64_t>{400, 10, 10, 10});

    // Tasks that start at 3 (JobRequest.first): ordered by slice, not by task index.
    JobRequest from3 = JobRequest::sets("t_square", sets);
    from3.first = 3;
    auto job = pool.imap_unordered(from3, {.chunksize = 2});
    REQUIRE(job.ok());
    Ordered<double> tail(std::move(job).value(), kJobTimeout);
    std::vector<double> tail_values;
    for (double v : tail) tail_values.push_back(v);
    CHECK(tail_values == std::vector<double>{9, 16, 25, 36, 49, 64, 81});

    auto squares = pool.imap<double>("t_square", sets, {.chunksize = 3, .timeout = kJobTimeout});
    REQUIRE(squares.ok());
    std::vector<double> got;
    for (double v : squares.value()) got.push_back(v);
    REQUIRE(got.size() == 10);
    for (std::size_t i = 0; i < 10; ++i) CHECK(got[i] == static_cast<double>(i * i));
  }
  SECTION("a stream refuses a chunk whose value count is not its task count") {
    // t_gather packs one value per slice of 250 elements, not one per element.
    auto x = make_array<double>("pool-count", 500);
    auto job = pool.imap_unordered(JobRequest::reduce("t_gather", x), {.chunksize = 250});
    REQUIRE(job.ok());
    Unordered<std::vector<double>> stream(std::move(job).value(), kJobTimeout);
    auto first = stream.next();
    REQUIRE_FALSE(first.ok());
    CHECK(first.error().code == ErrorCode::kInvalidArgument);
    CHECK_THAT(first.error().message, Catch::Contains("of 250 tasks returned 1 values"));
  }
  SECTION("a params kernel with a numeric combiner merges its tasks") {
    auto job = pool.submit(JobRequest::sets("t_param_sum", sets), {.chunksize = 4});
    REQUIRE(job.ok());
    auto r = job.value().result(kJobTimeout);
    REQUIRE(r.ok());
    CHECK(r.value().value == 45.0);
    auto refused = pool.starmap<double>("t_param_sum", sets);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.error().message, Catch::Contains("gathers"));
  }
  SECTION("a failing or throwing task fails the job with its message") {
    auto failed = pool.starmap<double>("t_square", xs({1, -1, 2}), {.timeout = kJobTimeout});
    REQUIRE_FALSE(failed.ok());
    CHECK_THAT(failed.error().message, Catch::Contains("x < 0"));
    auto thrown = pool.apply_async<double>("t_square", xs({13})[0]);
    REQUIRE(thrown.ok());
    CHECK_THROWS_WITH(thrown.value().get(kJobTimeout), Catch::Contains("unlucky 13"));
    CHECK_FALSE(thrown.value().successful());
  }
}

TEST_CASE("pool: wait with a timeout gives timeout, cancel stops the job",
          "[integration][plugin][pool]") {
  Pool pool(with_plugin(2));
  std::vector<Params> sets(40);
  for (auto& p : sets) p.set("ms", std::int64_t{100});  // 40 x 100 ms on 2 workers: ~2 s
  auto slow = pool.starmap_async<std::int64_t>("t_sleep", sets, {.chunksize = 1});
  REQUIRE(slow.ok());
  const Status waited = slow.value().wait(std::chrono::milliseconds(150));
  REQUIRE_FALSE(waited.ok());
  CHECK(waited.error().code == ErrorCode::kTimeout);
  CHECK_FALSE(slow.value().ready());
  auto cancelled = slow.value().cancel();
  REQUIRE(cancelled.ok());
  CHECK(cancelled.value().state == JobState::kCancelled);
  auto r = slow.value().result(kJobTimeout);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kCancelled);

  // The pool goes on with the next job.
  auto quick =
      pool.starmap<std::int64_t>("t_sleep", std::vector<Params>(2), {.timeout = kJobTimeout});
  REQUIRE(quick.ok());
  CHECK(quick.value() == std::vector<std::int64_t>{50, 50});
}

TEST_CASE("plugins: a kernel no worker offers is refused, and jobs go only to workers with it",
          "[integration][plugin]") {
  LocalCluster cluster(cluster_options(1));  // a worker without the plugin
  auto& c = cluster.client();
  auto refused = c.submit(JobRequest::sets("t_square", xs({1, 2})));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kUnknownKernel);

  CHECK_THAT(refused.error().message, Catch::Contains("t_square"));

  Process plugged({kBin + "/zwq-worker", "--broker", cluster.address(), "--plugin", kKernels,
                   "--worker-id", "plugged", "--log-level", "warn"});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (live_workers(c) < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(live_workers(c) == 2);

  // The client connected before the plugged worker announced t_square: submit asks again.
  std::vector<Params> many(30);
  for (int i = 0; i < 30; ++i) many[i].set("x", static_cast<double>(100 + i));
  auto job = c.submit(JobRequest::sets("t_square", many, {}, 1));
  INFO((job.ok() ? std::string() : job.error().to_string()));
  REQUIRE(job.ok());
  auto result = job.value().wait(kJobTimeout);
  INFO((result.ok() ? std::string() : result.error().to_string()));
  REQUIRE(result.ok());  // a slice sent to the plain worker would have failed the job
  auto values = unpack_gathered<double>(result.value().gathered);
  REQUIRE(values.ok());
  REQUIRE(values.value().size() == 30);
  CHECK(values.value()[29] == 129.0 * 129.0);
  auto ws = c.workers();
  REQUIRE(ws.ok());
  for (const auto& w : ws.value()) {
    if (w.worker_id == "plugged") CHECK(w.slices_done == 30);
    if (w.worker_id != "plugged") CHECK(w.slices_done == 0);
  }

  // Once the plugged worker is gone, the kernel is refused again.
  plugged.stop();
  const auto gone = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (live_workers(c) > 1 && std::chrono::steady_clock::now() < gone) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto late = c.submit(JobRequest::sets("t_square", xs({1})));
  REQUIRE_FALSE(late.ok());
  CHECK(late.error().code == ErrorCode::kUnknownKernel);
  CHECK_THAT(late.error().message, Catch::Contains("t_square"));
}

TEST_CASE("plugins: zwq-worker refuses a bad plugin with exit code 1 and says why",
          "[integration][plugin]") {
  const std::string worker = kBin + "/zwq-worker --broker ipc:///nonexistent/zwq --plugin ";
  const std::string dir = ZWQ_TEST_PLUGIN_DIR;
  auto abi = run_command(worker + dir + "/libzwq_test_wrong_abi.so 2>&1");
  CHECK(abi.exit_code == 1);
  CHECK_THAT(abi.out,
             Catch::Contains("version 999") && Catch::Contains("libzwq_test_wrong_abi.so"));
  auto symbol = run_command(worker + dir + "/libzwq_test_not_a_plugin.so 2>&1");
  CHECK(symbol.exit_code == 1);
  CHECK_THAT(symbol.out, Catch::Contains("missing symbol zwq_plugin_abi_version"));
  auto missing = run_command(worker + dir + "/libno_such_plugin.so 2>&1");
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.out, Catch::Contains("libno_such_plugin.so"));
  auto clash = run_command(worker + kKernels + " --plugin " + dir + "/libzwq_test_twin.so 2>&1");
  CHECK(clash.exit_code == 1);
  CHECK_THAT(clash.out, Catch::Contains("'t_sum' is already defined by plugin " + kKernels));
}

TEST_CASE("plugins: zwq stream prints a gather kernel's per-slice values as JSON",
          "[integration][plugin][cli]") {
  const std::string zwq = kBin + "/zwq";
  auto x = make_array<double>("stream-gather", 1000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i) * 0.5;
  const std::string script = zwq + " submit -k t_gather -i shm:" + x.name() +
                             " --slice 250 --job-id g --no-wait >/dev/null && " + zwq + " stream g";
  auto out = run_command(zwq + " local --workers 1 --plugin " + kKernels + " -- sh -c " +
                         sh_quote(script));
  INFO(out.out);
  REQUIRE(out.exit_code == 0);
  std::istringstream lines(out.out);
  std::map<std::uint64_t, nlohmann::json> by_slice;
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line);
    by_slice[j.at("slice").get<std::uint64_t>()] = j.at("values");
  }
  REQUIRE(by_slice.size() == 4);
  for (std::uint64_t s = 0; s < 4; ++s) {
    // t_gather packs one value a slice: its first element and its length.
    const auto expected = nlohmann::json::array({static_cast<double>(s * 250) * 0.5, 250.0});
    CHECK(by_slice[s] == nlohmann::json::array({expected}));
  }
}

TEST_CASE("plugins: zwq local --plugin, and zwq kernels lists what the broker offers",
          "[integration][plugin][cli]") {
  const std::string zwq = kBin + "/zwq";
  auto out = run_command(zwq + " local --workers 1 --plugin " + kKernels + " -- " + zwq +
                         " kernels --json");
  INFO(out.out);
  REQUIRE(out.exit_code == 0);
  const auto kernels = nlohmann::json::parse(out.out);
  bool found = false;
  for (const auto& k : kernels) {
    if (k.at("name") == "t_fill") {
      found = true;
      CHECK(k.at("shape") == "generate");
      CHECK(k.at("combiner") == "count");
      CHECK(k.at("output_dtype") == "i64");
    }
  }
  CHECK(found);
  CHECK(kernels.size() == KernelRegistry::builtin().size() + 11);
}

TEST_CASE(
    "pool: the default chunksize of a job over this host's memory counts the workers that see "
    "its /dev/shm, not those of the same host name with a /dev/shm of their own",
    "[integration][pool]") {
  OwnMemory::require_root();
  TestDir dir("pool-hosts");
  BrokerProcess broker(dir, {});
  broker.start();
  WorkerProcesses here(broker.address());
  here.add();
  here.add();
  const std::vector<std::string> worker = {std::string(ZWQ_TEST_BIN_DIR) + "/zwq-worker",
                                           "--broker", broker.address(), "--log-level", "warn"};
  // Another host name over this /dev/shm (it reads the array), and two workers of this host name
  // that cannot read it: what a container with a /dev/shm of its own, or another machine given
  // the same name, would be.
  Process renamed({"/usr/bin/unshare", "--uts", "sh", "-c", "hostname elsewhere && exec \"$@\"",
                   "sh", worker[0], worker[1], worker[2], worker[3], worker[4]});
  Process apart1(OwnMemory{}.argv(worker));
  Process apart2(OwnMemory{}.argv(worker));
  auto pool = Pool::connect({.broker = broker.address(), .request_timeout = 30s});
  REQUIRE(pool.ok());
  REQUIRE(wait_for_workers(pool.value().client(), 5));
  auto x = make_array<float>("pool-hosts", 1200);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 1.0f;
  CHECK(pool.value().workers() == 5);
  CHECK(pool.value().workers(x.ref()) == 3);
  CHECK(pool.value().workers(DatasetRef{"/data/shared.f32"}) == 5);

  auto job = pool.value().imap_unordered(JobRequest::reduce("sum", x));
  REQUIRE(job.ok());
  CHECK(job.value().total_slices() == 12);  // 1200 / (4 * 3), not 1200 / (4 * 4) by host name
  auto r = job.value().wait(kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().value == 1200.0);
  auto listed = pool.value().client().workers();
  REQUIRE(listed.ok());
  for (const WorkerStatus& w : listed.value()) {
    INFO(w.worker_id << " memory " << w.memory);
    const bool apart = w.pid == static_cast<std::uint32_t>(apart1.pid()) ||
                       w.pid == static_cast<std::uint32_t>(apart2.pid());
    CHECK((w.memory == memory_id()) != apart);
    if (apart) CHECK(w.slices_done == 0);
  }
  // A range job is no host's: all five count.
  auto range = pool.value().imap_unordered(JobRequest::range("primes", 0, 1200));
  REQUIRE(range.ok());
  CHECK(range.value().total_slices() == 20);  // 1200 / (4 * 5)
}

TEST_CASE("pool: map runs a kernel into an output array with Pool's default chunksize",
          "[integration][pool]") {
  Pool pool(cluster_options(2));
  CHECK(pool.workers() == 2);
  auto x = make_array<float>("pool-map-x", 1000);
  CHECK(pool.workers(x.ref()) == 2);  // the array's host: its workers count
  DatasetRef there = x.ref();
  there.host = "another-host";
  CHECK(pool.workers(there) == 1);  // none there: at least 1
  auto y = make_array<double>("pool-map-y", 1000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  auto mapped = pool.map_async("square", x, y);
  REQUIRE(mapped.ok());
  CHECK(mapped.value().job().total_slices() == 8);  // ceil(1000 / (4 * 2)) = 125 per slice
  auto r = mapped.value().result(kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().value == 1000);
  CHECK(y[999] == 999.0 * 999.0);

  auto blocking = pool.map("affine", x, y, Params{}, {.chunksize = 100, .timeout = kJobTimeout});
  REQUIRE(blocking.ok());
  CHECK(y[10] == 10.0);
}
