// The client side of user kernels, without a broker: prepare_job() with the broker's kernel
// specs (a plugin's datasets are still probed), parameter-set jobs, and the Pool helpers.
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "shm_file.hpp"
#include "zwq/client.hpp"

namespace {

using zwq::DType;
using zwq::ErrorCode;
using zwq::JobRequest;
using zwq::KernelShape;
using zwq::KernelSpec;
using zwq::test::ShmFile;

const std::vector<KernelSpec> kRemote{
    {"sumsq", zwq::Combiner::kSum, KernelShape::kReduce, DType::kF64, DType::kNone},
    {"render", zwq::Combiner::kCount, KernelShape::kGenerate, DType::kNone, DType::kU8},
    {"sweep", zwq::Combiner::kGather, KernelShape::kParams, DType::kNone, DType::kNone},
};

std::vector<zwq::Params> sets(std::size_t n) {
  std::vector<zwq::Params> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i].set("x", static_cast<std::int64_t>(i));
  return out;
}

}  // namespace

TEST_CASE("prepare_job probes the datasets of a kernel the broker describes", "[client][pool]") {
  ShmFile f("pool-prep");
  f.write(std::vector<double>(50, 1.0));
  REQUIRE(zwq::write_meta(f.path(), DType::kF64, 50).ok());
  JobRequest r;
  r.kernel = "sumsq";
  r.input.uri = f.uri();
  auto spec = zwq::prepare_job(r, kRemote);
  REQUIRE(spec.ok());
  CHECK(spec.value().input.dtype == DType::kF64);
  CHECK(spec.value().count == 50);

  r.count = 60;
  CHECK(zwq::prepare_job(r, kRemote).error().code == ErrorCode::kDatasetTooShort);
  r.count.reset();
  r.output.uri = f.uri();
  CHECK(zwq::prepare_job(r, kRemote).error().code == ErrorCode::kInvalidArgument);

  // Known by name only (an older broker): no shape, so no checks but the broker's.
  JobRequest blind;
  blind.kernel = "sumsq";
  blind.input = zwq::DatasetRef{f.uri(), DType::kF64};
  CHECK(zwq::prepare_job(blind, std::vector<std::string>{"sumsq"}).ok());
  CHECK(zwq::prepare_job(blind).error().code == ErrorCode::kUnknownKernel);
}

TEST_CASE("prepare_job holds a plugin kernel to the dtype it insists on", "[client][pool]") {
  ShmFile f32("pool-prep-f32");
  f32.write(std::vector<float>(8, 1.0f));
  REQUIRE(zwq::write_meta(f32.path(), DType::kF32, 8).ok());
  JobRequest r;
  r.kernel = "sumsq";
  r.input.uri = f32.uri();
  auto spec = zwq::prepare_job(r, kRemote);
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.error().code == ErrorCode::kDtypeMismatch);

  // A raw file records no dtype: it is taken to be what the kernel reads.
  ShmFile raw("pool-prep-raw");
  raw.write(std::vector<double>(4, 2.0));
  r.input.uri = raw.uri();
  auto raw_spec = zwq::prepare_job(r, kRemote);
  REQUIRE(raw_spec.ok());
  CHECK(raw_spec.value().input.dtype == DType::kF64);
  CHECK(raw_spec.value().count == 4);
}

TEST_CASE("prepare_job counts a generate kernel's output", "[client][pool]") {
  ShmFile img("pool-prep-img");
  img.write(std::vector<std::uint8_t>(120, 0));
  REQUIRE(zwq::write_meta(img.path(), DType::kU8, 120).ok());
  JobRequest r;
  r.kernel = "render";
  r.output.uri = img.uri();
  r.first = 20;
  auto spec = zwq::prepare_job(r, kRemote);
  REQUIRE(spec.ok());
  CHECK(spec.value().count == 100);
  CHECK(spec.value().output.length == 120);
}

TEST_CASE("prepare_job of parameter sets counts the sets and refuses them elsewhere",
          "[client][pool]") {
  auto spec = zwq::prepare_job(JobRequest::sets("sweep", sets(5), {}, 2), kRemote);
  REQUIRE(spec.ok());
  CHECK(spec.value().count == 5);
  CHECK(spec.value().slice_size == 2);
  CHECK(spec.value().param_sets.size() == 5);

  JobRequest past = JobRequest::sets("sweep", sets(3));
  past.count = 4;
  CHECK(zwq::prepare_job(past, kRemote).error().code == ErrorCode::kOutOfRange);
  past.count.reset();
  past.first = 4;
  CHECK(zwq::prepare_job(past, kRemote).error().code == ErrorCode::kOutOfRange);

  JobRequest range = JobRequest::range("pi", 100);
  range.param_sets = sets(1);
  auto refused = zwq::prepare_job(range, kRemote);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kInvalidArgument);
  CHECK_THAT(refused.error().message, Catch::Contains("takes no parameter sets"));
}

TEST_CASE("pool auto chunksize is ceil(n / (4 * workers)) like multiprocessing.Pool",
          "[client][pool]") {
  CHECK(zwq::auto_chunksize(100, 4) == 7);  // divmod(100, 16) = (6, 4) -> 7
  CHECK(zwq::auto_chunksize(16, 4) == 1);
  CHECK(zwq::auto_chunksize(17, 4) == 2);
  CHECK(zwq::auto_chunksize(3, 8) == 1);
  CHECK(zwq::auto_chunksize(0, 2) == 1);
  CHECK(zwq::auto_chunksize(1000, 0) == 250);  // no workers known: as if one
}

TEST_CASE("pool unpacks gathered values in slice order and refuses another type",
          "[client][pool]") {
  auto pack = [](auto... values) {
    msgpack::sbuffer buf;
    (msgpack::pack(buf, values), ...);
    return std::string(buf.data(), buf.size());
  };
  const std::vector<std::string> slices{pack(1.5, 2.0), pack(3), std::string(), pack(4.25)};
  auto values = zwq::unpack_gathered<double>(slices);
  REQUIRE(values.ok());
  CHECK(values.value() == std::vector<double>{1.5, 2.0, 3.0, 4.25});

  auto strings = zwq::unpack_gathered<std::string>(slices);
  REQUIRE_FALSE(strings.ok());
  CHECK(strings.error().code == ErrorCode::kInvalidArgument);
  CHECK(zwq::unpack_values<double>(std::string("\xc1", 1)).error().code ==
        ErrorCode::kInvalidArgument);
}
