// validate_job: every way a submitted JobSpec is refused, each named.
#include "validation.hpp"

#include <catch2/catch.hpp>

using namespace zwq;
using namespace zwq::broker;

namespace {

Status fake_kernel(const SliceContext&, Partial&) {
  return Status::Ok();
}

Status reject_bad_param(const Params& p, DType, std::uint64_t) {
  if (p.has("bad")) return make_error(ErrorCode::kInvalidArgument, "parameter 'bad' is refused");
  return Status::Ok();
}

const KernelRegistry& kernels() {
  static const KernelRegistry registry = [] {
    KernelRegistry k;
    auto add = [&](const char* name, KernelShape s, ValidateFn v = nullptr) {
      KernelInfo info;
      info.name = name;
      info.fn = fake_kernel;
      info.shape = s;
      info.validate = v;
      (void)k.add(std::move(info));
    };
    add("sum", KernelShape::kReduce);
    add("dot", KernelShape::kReduce2);
    add("square", KernelShape::kMap);
    add("range", KernelShape::kRange, reject_bad_param);
    return k;
  }();
  return registry;
}

DatasetRef dataset(const char* uri, std::uint64_t length = 0, DType t = DType::kF64) {
  DatasetRef d;
  d.uri = uri;
  d.dtype = t;
  d.length = length;
  return d;
}

JobSpec reduce_job() {
  JobSpec spec;
  spec.job_id = "j1";
  spec.kernel = "sum";
  spec.input = dataset("shm:x", 1000);
  spec.first = 100;
  spec.count = 900;
  return spec;
}

Error refusal(const JobSpec& spec, ValidationLimits limits = {}) {
  auto r = validate_job(spec, kernels(), limits);
  REQUIRE_FALSE(r.ok());
  return r.error();
}

}  // namespace

TEST_CASE("validation accepts a well-formed job and returns its kernel", "[broker]") {
  auto r = validate_job(reduce_job(), kernels(), {});
  REQUIRE(r.ok());
  CHECK(r.value()->name == "sum");
}

TEST_CASE("validation accepts a range job without datasets", "[broker]") {
  JobSpec spec;
  spec.kernel = "range";
  spec.count = 1'000'000;
  CHECK(validate_job(spec, kernels(), {}).ok());
}

TEST_CASE("validation refuses an unknown kernel and lists the known ones", "[broker]") {
  JobSpec spec = reduce_job();
  spec.kernel = "summ";
  const Error e = refusal(spec);
  CHECK(e.code == ErrorCode::kUnknownKernel);
  CHECK_THAT(e.message, Catch::Contains("summ") && Catch::Contains("sum, dot, square, range"));
}

TEST_CASE(
    "validation refuses a dataset whose byte offset is not a whole number of elements, before a "
    "worker would",
    "[broker]") {
  JobSpec spec = reduce_job();
  spec.input.byte_offset = 3;
  const Error e = refusal(spec);
  CHECK(e.code == ErrorCode::kInvalidArgument);
  CHECK(e.message.find("input dataset 'shm:x': byte offset 3 is not a multiple of the f64 "
                       "element size (8)") != std::string::npos);
  spec.input.byte_offset = 16;
  CHECK(validate_job(spec, kernels(), {}).ok());
}

TEST_CASE("validation refuses a reduce job without input", "[broker]") {
  JobSpec spec = reduce_job();
  spec.input = {};
  const Error e = refusal(spec);
  CHECK(e.code == ErrorCode::kInvalidArgument);
  CHECK_THAT(e.message, Catch::Contains("input"));
}

TEST_CASE("validation refuses a two-input job without input2", "[broker]") {
  JobSpec spec = reduce_job();
  spec.kernel = "dot";
  CHECK_THAT(refusal(spec).message, Catch::Contains("input2"));
}

TEST_CASE("validation refuses a map job without output", "[broker]") {
  JobSpec spec = reduce_job();
  spec.kernel = "square";
  CHECK_THAT(refusal(spec).message, Catch::Contains("output"));
}

TEST_CASE("validation refuses a dataset the kernel does not read, as a stray argument",
          "[broker]") {
  JobSpec spec = reduce_job();
  spec.input2 = dataset("shm:y", 1000);
  const Error e = refusal(spec);
  CHECK(e.code == ErrorCode::kInvalidArgument);
  CHECK_THAT(e.message, Catch::Contains("kernel 'sum' reads no input2 dataset, but shm:y"));
  spec.kernel = "dot";  // which does
  CHECK(validate_job(spec, kernels(), {}).ok());
}

TEST_CASE("validation refuses a shm name no worker could open, before a worker would", "[broker]") {
  for (const char* uri : {"shm:../etc/x", "shm:", "shm:..", "file:"}) {
    INFO(uri);
    JobSpec spec = reduce_job();
    spec.input = dataset(uri, 1000);
    const Error e = refusal(spec);
    CHECK(e.code == ErrorCode::kInvalidArgument);
    CHECK_THAT(e.message, Catch::Contains("input") && Catch::Contains("name"));
  }
}

TEST_CASE("validation refuses a dataset without dtype", "[broker]") {
  JobSpec spec = reduce_job();
  spec.input.dtype = DType::kNone;
  const Error e = refusal(spec);
  CHECK(e.code == ErrorCode::kInvalidArgument);
  CHECK_THAT(e.message, Catch::Contains("dtype"));
}

TEST_CASE("validation refuses elements beyond a dataset's known length", "[broker]") {
  JobSpec spec = reduce_job();
  spec.count = 901;
  const Error e = refusal(spec);
  CHECK(e.code == ErrorCode::kOutOfRange);
  CHECK(e.message == "job j1: elements [100, 1001) are outside shm:x which holds 1000");
}

TEST_CASE("validation trusts a dataset of unknown length", "[broker]") {
  JobSpec spec = reduce_job();
  spec.input.length = 0;
  spec.count = 1'000'000;
  CHECK(validate_job(spec, kernels(), {}).ok());
}

TEST_CASE("validation refuses a range that overflows", "[broker]") {
  JobSpec spec;
  spec.kernel = "range";
  spec.first = ~std::uint64_t{0} - 5;
  spec.count = 10;
  CHECK(refusal(spec).code == ErrorCode::kOutOfRange);
}

TEST_CASE("validation refuses a bad job id", "[broker]") {
  for (const char* id : {"has space", "slash/y", "ünïcode"}) {
    JobSpec spec = reduce_job();
    spec.job_id = id;
    CHECK(refusal(spec).code == ErrorCode::kInvalidArgument);
  }
  JobSpec spec = reduce_job();
  spec.job_id = std::string(65, 'a');
  CHECK(refusal(spec).code == ErrorCode::kInvalidArgument);
  CHECK(valid_job_id("A-z_0.9"));
  CHECK_FALSE(valid_job_id(""));
}

TEST_CASE("validation refuses a slice size that makes too many slices", "[broker]") {
  JobSpec spec;
  spec.job_id = "tiny-slices";
  spec.kernel = "range";
  spec.count = 1'000'001;
  spec.slice_size = 1;
  ValidationLimits limits;
  limits.max_slices_per_job = 1'000'000;
  const Error e = refusal(spec, limits);
  CHECK(e.code == ErrorCode::kInvalidArgument);
  CHECK_THAT(e.message, Catch::Contains("1000001 slices") && Catch::Contains("slice size"));
}

TEST_CASE("validation uses the default slice size for 0", "[broker]") {
  JobSpec spec;
  spec.kernel = "range";
  ValidationLimits limits;
  limits.default_slice_size = 123;
  CHECK(effective_slice_size(spec, limits) == 123);
  spec.slice_size = 7;
  CHECK(effective_slice_size(spec, limits) == 7);
}

TEST_CASE("validation runs the kernel's own parameter check", "[broker]") {
  JobSpec spec;
  spec.job_id = "p";
  spec.kernel = "range";
  spec.count = 10;
  spec.params.set("bad", std::int64_t{1});
  const Error e = refusal(spec);
  CHECK(e.code == ErrorCode::kInvalidArgument);
  CHECK(e.message == "job p: parameter 'bad' is refused");
}

TEST_CASE("validation refuses a job whose datasets are in the memory of two hosts, naming both",
          "[broker]") {
  JobSpec spec;
  spec.job_id = "j2";
  spec.kernel = "dot";
  spec.input = dataset("shm:x", 1000);
  spec.input2 = dataset("shm:y", 1000);
  spec.count = 1000;
  spec.input.host = "node01";
  spec.input2.host = "node01";
  CHECK(validate_job(spec, kernels(), {}).ok());  // both on one host
  spec.input2.host = "";                          // a shared file and one host's memory
  CHECK(validate_job(spec, kernels(), {}).ok());
  spec.input2.host = "node02";
  const Error e = refusal(spec);
  CHECK(e.code == ErrorCode::kInvalidArgument);
  CHECK(e.message.find("host 'node01' and host 'node02'") != std::string::npos);
  // One host name, two memories: two machines of that name, or two containers.
  spec.input2.host = "node01";
  spec.input.memory = "boot-a/0:26";
  spec.input2.memory = "boot-b/0:26";
  CHECK(refusal(spec).message.find("(memory boot-a/0:26) and host 'node01' (memory boot-b/0:26)") !=
        std::string::npos);

  // A host without a dataset would bind the job to it for nothing.
  JobSpec bare = reduce_job();
  bare.output.host = "node03";
  CHECK(refusal(bare).message.find("without a uri names host 'node03'") != std::string::npos);
}
