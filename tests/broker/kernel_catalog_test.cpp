// KernelCatalog and the broker's handling of kernels that workers announce (plugins): which jobs
// it accepts, which worker gets them, how their results merge — all without running user code.
#include "kernel_catalog.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

#include "scheduler.hpp"
#include "validation.hpp"

using namespace zwq;
using namespace zwq::broker;
using namespace std::chrono_literals;

namespace {

KernelSpec gather_params(std::string name = "sweep") {
  return KernelSpec{std::move(name), Combiner::kGather, KernelShape::kParams, DType::kNone,
                    DType::kNone};
}
KernelSpec f64_sum(std::string name = "sumsq") {
  return KernelSpec{std::move(name), Combiner::kSum, KernelShape::kReduce, DType::kF64,
                    DType::kNone};
}

JobSpec sets_job(std::string kernel, std::size_t sets) {
  JobSpec spec;
  spec.job_id = "job-" + kernel;
  spec.kernel = std::move(kernel);
  spec.param_sets.resize(sets);
  for (std::size_t i = 0; i < sets; ++i) spec.param_sets[i].set("x", static_cast<double>(i));
  spec.count = sets;
  return spec;
}

}  // namespace

TEST_CASE("kernel catalog offers an announced kernel while a worker announcing it lives",
          "[broker][plugin]") {
  KernelCatalog c(KernelRegistry::builtin());
  CHECK(c.find("sweep") == nullptr);
  c.offer("w1", {"sum", "sweep"}, {gather_params()});
  c.offer("w2", {"sum", "sweep"}, {gather_params()});
  const KernelInfo* k = c.find("sweep");
  REQUIRE(k != nullptr);
  CHECK(k->combiner == Combiner::kGather);
  CHECK(k->shape == KernelShape::kParams);
  CHECK_FALSE(c.is_builtin(k));
  CHECK(c.is_builtin(c.find("sum")));

  c.withdraw("w1");
  CHECK(c.find("sweep") == k);
  c.withdraw("w2");
  CHECK(c.find("sweep") == nullptr);
  // A worker announcing the same definition again gets the same entry: queued jobs point at it.
  c.offer("w3", {"sweep"}, {gather_params()});
  CHECK(c.find("sweep") == k);
}

TEST_CASE("kernel catalog routes announced kernels only to the workers that announced them",
          "[broker][plugin]") {
  KernelCatalog c(KernelRegistry::builtin());
  c.offer("plain", {}, {});
  c.offer("named", {"sum"}, {});
  c.offer("plugged", {"sum", "sweep"}, {gather_params()});
  const KernelInfo* sweep = c.find("sweep");
  const KernelInfo* sum = c.find("sum");
  const KernelInfo* mean = c.find("mean");
  CHECK(c.serves("plugged", sweep));
  CHECK_FALSE(c.serves("plain", sweep));  // an empty list means "every built-in", not plugins
  CHECK_FALSE(c.serves("named", sweep));
  CHECK(c.serves("plain", mean));
  CHECK(c.serves("named", sum));
  CHECK_FALSE(c.serves("named", mean));
  CHECK_FALSE(c.serves("nobody", sum));
}

TEST_CASE("kernel catalog keeps built-in definitions and refuses a disagreeing announcement",
          "[broker][plugin]") {
  KernelCatalog c(KernelRegistry::builtin());
  KernelSpec fake_sum = gather_params("sum");
  c.offer("w1", {"sum"}, {fake_sum});
  CHECK(c.find("sum") == KernelRegistry::builtin().find("sum"));

  c.offer("w1", {"sweep"}, {gather_params()});
  KernelSpec reworded = gather_params();
  reworded.help = "another version of the same kernel";
  c.offer("w3", {"sweep"}, {reworded});
  CHECK(c.conflicts() == 0);  // the help text is no part of the definition
  CHECK(c.serves("w3", c.find("sweep")));
  c.withdraw("w3");
  KernelSpec other = gather_params();
  other.combiner = Combiner::kSum;
  c.offer("w2", {"sweep"}, {other});
  CHECK(c.conflicts() == 1);
  CHECK(c.find("sweep")->combiner == Combiner::kGather);
  CHECK_FALSE(c.serves("w2", c.find("sweep")));

  // Once nobody offers the first definition, the other one may take its place.
  c.withdraw("w1");
  c.offer("w2", {"sweep"}, {other});
  REQUIRE(c.find("sweep") != nullptr);
  CHECK(c.find("sweep")->combiner == Combiner::kSum);
}

TEST_CASE("kernel catalog lists built-in then announced kernels with their specs",
          "[broker][plugin]") {
  KernelCatalog c(KernelRegistry::builtin());
  c.offer("w1", {"zeta", "alpha"}, {f64_sum("zeta"), gather_params("alpha")});
  const auto names = c.names();
  const std::size_t builtins = KernelRegistry::builtin().size();
  REQUIRE(names.size() == builtins + 2);
  CHECK(names[builtins] == "alpha");
  CHECK(names[builtins + 1] == "zeta");
  const auto specs = c.specs();
  CHECK(specs.back() == f64_sum("zeta"));
}

TEST_CASE("validation against the catalog says no worker offers an unknown kernel",
          "[broker][plugin]") {
  KernelCatalog c(KernelRegistry::builtin());
  c.offer("w1", {"sweep"}, {gather_params()});
  auto r = validate_job(sets_job("nope", 2), c, {});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kUnknownKernel);
  CHECK_THAT(r.error().message, Catch::Contains("no worker offers kernel 'nope'; offered: ") &&
                                    Catch::Contains("sweep") && Catch::Contains("sum"));
  CHECK(validate_job(sets_job("sweep", 2), c, {}).ok());
}

TEST_CASE("validation checks parameter sets and announced dtypes", "[broker][plugin]") {
  KernelCatalog c(KernelRegistry::builtin());
  c.offer("w1", {}, {gather_params(), f64_sum()});
  ValidationLimits limits;

  JobSpec more = sets_job("sweep", 3);
  more.count = 4;
  CHECK(validate_job(more, c, limits).error().code == ErrorCode::kOutOfRange);
  JobSpec sets_to_sum;
  sets_to_sum.job_id = "j";
  sets_to_sum.kernel = "sum";
  sets_to_sum.input = DatasetRef{"shm:x", DType::kF32, 0, 10};
  sets_to_sum.count = 10;
  sets_to_sum.param_sets.resize(1);
  CHECK(validate_job(sets_to_sum, c, limits).error().code == ErrorCode::kInvalidArgument);
  // A job of parameter sets gets one set per slice unless it asks otherwise.
  CHECK(effective_slice_size(sets_job("sweep", 3), limits) == 1);

  JobSpec wrong_dtype;
  wrong_dtype.job_id = "j2";
  wrong_dtype.kernel = "sumsq";
  wrong_dtype.input = DatasetRef{"shm:x", DType::kF32, 0, 10};
  wrong_dtype.count = 10;
  auto refused = validate_job(wrong_dtype, c, limits);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kDtypeMismatch);
  CHECK_THAT(refused.error().message, Catch::Contains("f64") && Catch::Contains("f32"));
  wrong_dtype.input.dtype = DType::kF64;
  CHECK(validate_job(wrong_dtype, c, limits).ok());
}

TEST_CASE("scheduler accepts, routes and gathers a kernel only a worker announced",
          "[broker][plugin]") {
  SchedulerOptions o;
  o.epoch = 5;
  Scheduler sched(o, KernelRegistry::builtin());
  TimePoint now = TimePoint{} + 100s;

  auto refused = sched.submit(sets_job("sweep", 3), now);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kUnknownKernel);

  msg::Hello plain;
  plain.worker_id = "plain";
  plain.credit = 8;
  plain.kernels = KernelRegistry::builtin().names();
  plain.kernel_specs = KernelRegistry::builtin().specs();
  REQUIRE(sched.hello(plain, now) == HelloVerdict::kRegistered);
  msg::Hello plugged = plain;
  plugged.worker_id = "plugged";
  plugged.kernels.push_back("sweep");
  plugged.kernel_specs.push_back(gather_params());
  REQUIRE(sched.hello(plugged, now) == HelloVerdict::kRegistered);
  const std::vector<std::string> offered = sched.kernels().names();
  CHECK(std::find(offered.begin(), offered.end(), "sweep") != offered.end());

  auto rep = sched.submit(sets_job("sweep", 3), now);
  REQUIRE(rep.ok());
  CHECK(rep.value().total_slices == 3);
  std::vector<Dispatch> out;
  sched.dispatch(out, now);
  REQUIRE_FALSE(out.empty());
  for (const Dispatch& d : out) CHECK(d.worker_id == "plugged");

  // The plugged worker's results, in reverse order: the client gets them in slice order.
  msg::Results results;
  results.epoch = 5;
  results.worker_id = "plugged";
  results.job_id = rep.value().job_id;
  for (const Dispatch& d : out) {
    for (const SliceRun& r : d.runs) {
      for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
        SliceOutcome o;
        o.slice = s;
        o.attempt = r.attempt;
        o.partial = identity_partial(Combiner::kGather);
        o.partial.n = 1;
        o.partial.bytes = "slice" + std::to_string(s);
        results.items.insert(results.items.begin(), o);
      }
    }
  }
  REQUIRE(results.items.size() == 3);
  sched.results(results, now);
  const Job* job = sched.find_job(rep.value().job_id);
  REQUIRE(job != nullptr);
  CHECK(job->state == JobState::kDone);
  CHECK(job->full_result().gathered == std::vector<std::string>{"slice0", "slice1", "slice2"});

  // Once the only worker offering it leaves, new jobs of the kernel are refused.
  REQUIRE(sched.bye("plugged", now));
  JobSpec again = sets_job("sweep", 1);
  again.job_id = "job-late";  // a new job: the id of the finished one would just be answered
  auto late = sched.submit(again, now);
  REQUIRE_FALSE(late.ok());
  CHECK_THAT(late.error().message, Catch::Contains("no worker offers kernel 'sweep'"));
}
