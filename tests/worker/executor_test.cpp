// Executor: slices computed on real /dev/shm files, and every way a slice can fail.
#include "executor.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <numeric>
#include <vector>

#include "alloc_count.hpp"
#include "dataset_cache.hpp"
#include "outcome_batch.hpp"
#include "shm_file.hpp"
#include "zwq/dataset.hpp"
#include "zwq/kernel.hpp"
#include "zwq/partial.hpp"

using zwq::Combiner;
using zwq::DatasetRef;
using zwq::DType;
using zwq::ErrorCode;
using zwq::JobSpec;
using zwq::Partial;
using zwq::SliceOutcome;
using zwq::SliceRun;
using zwq::test::allocations_during;
using zwq::test::ShmFile;
using zwq::worker::DatasetCache;
using zwq::worker::Executor;

namespace {

std::vector<float> ramp_f32(std::size_t n) {
  std::vector<float> v(n);
  std::uint64_t state = 12345;
  for (auto& x : v) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<float>(state >> 40) / static_cast<float>(1u << 24) - 0.25f;
  }
  return v;
}

JobSpec sum_job(const ShmFile& file, DType dtype, std::uint64_t count, std::uint64_t slice_size) {
  JobSpec job;
  job.job_id = "job-1";
  job.kernel = "sum";
  job.input = DatasetRef{file.uri(), dtype, 0, count};
  job.count = count;
  job.slice_size = slice_size;
  return job;
}

zwq::msg::Tasks all_slices(const JobSpec& job) {
  zwq::msg::Tasks t;
  t.epoch = 1;
  t.job = job;
  const std::uint64_t slices = (job.count + job.slice_size - 1) / job.slice_size;
  t.runs.push_back(SliceRun{0, static_cast<std::uint32_t>(slices), 1});
  return t;
}

// Folds the outcomes' partials in slice order, as the broker's collector does.
Partial merged(const std::vector<SliceOutcome>& outcomes, Combiner c) {
  Partial acc = zwq::identity_partial(c);
  for (const auto& o : outcomes) {
    REQUIRE(o.code == ErrorCode::kOk);
    REQUIRE(zwq::merge_into(acc, o.partial).ok());
  }
  return acc;
}

}  // namespace

TEST_CASE("executor sums a real f32 file like a long double reference", "[worker]") {
  const auto values = ramp_f32(1'000'003);
  ShmFile file("exec-sum");
  file.write(values);
  DatasetCache cache;
  Executor executor(cache);

  const auto outcomes =
      executor.execute(all_slices(sum_job(file, DType::kF32, values.size(), 65536)));
  REQUIRE(outcomes.size() == 16);
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    CHECK(outcomes[i].slice == i);
    CHECK(outcomes[i].attempt == 1);
  }
  const Partial total = merged(outcomes, Combiner::kSum);
  long double reference = 0;
  for (float x : values) reference += x;
  CHECK(total.n == values.size());
  CHECK(total.hi + total.lo == Approx(static_cast<double>(reference)).epsilon(1e-12));
}

TEST_CASE("executor offsets slices by the job's first element and the byte offset", "[worker]") {
  std::vector<std::int32_t> values(1000);
  std::iota(values.begin(), values.end(), 0);
  ShmFile file("exec-offset");
  file.write(values, std::string(16, 'h'));  // a 16-byte header before element 0
  JobSpec job = sum_job(file, DType::kI32, 300, 128);
  job.input.byte_offset = 16;
  job.first = 500;
  DatasetCache cache;
  Executor executor(cache);

  const auto outcomes = executor.execute(all_slices(job));
  REQUIRE(outcomes.size() == 3);
  // Slice 0 is elements [500, 628), whose values are their indices.
  CHECK(outcomes[0].partial.hi == (500.0 + 627.0) * 128 / 2);
  CHECK(merged(outcomes, Combiner::kSum).hi == (500.0 + 799.0) * 300 / 2);
}

TEST_CASE("executor cuts the last slice short at the job's end", "[worker]") {
  std::vector<std::int64_t> values(10);
  std::iota(values.begin(), values.end(), 1);  // 1..10
  ShmFile file("exec-bounds");
  file.write(values);
  DatasetCache cache;
  Executor executor(cache);
  const auto job = executor.prepare(sum_job(file, DType::kI64, 10, 4));

  const SliceOutcome last = job.run(2, 3);
  REQUIRE(last.code == ErrorCode::kOk);
  CHECK(last.slice == 2);
  CHECK(last.attempt == 3);
  CHECK(last.partial.n == 2);
  CHECK(last.partial.hi == 9 + 10);
  CHECK(job.run(1, 1).partial.hi == 5 + 6 + 7 + 8);

  const SliceOutcome beyond = job.run(3, 1);
  CHECK(beyond.code == ErrorCode::kOutOfRange);
}

TEST_CASE("executor rejects a slice size of 0", "[worker]") {
  ShmFile file("exec-zero");
  file.write(std::vector<float>(10, 1.0f));
  DatasetCache cache;
  Executor executor(cache);
  const auto job = executor.prepare(sum_job(file, DType::kF32, 10, 0));
  CHECK(job.run(0, 1).code == ErrorCode::kInvalidArgument);
}

TEST_CASE(
    "executor refuses a dataset in another host's memory, though a file of that name is here, "
    "by host name or by memory id, and computes it when the memory is its own",
    "[worker]") {
  ShmFile file("exec-host");
  file.write(std::vector<float>(10, 1.0f));
  DatasetCache cache;
  Executor executor(cache);
  JobSpec spec = sum_job(file, DType::kF32, 10, 5);
  spec.input.host = "not-" + zwq::host_name();
  const auto refused = executor.execute(all_slices(spec));
  REQUIRE(refused.size() == 2);
  CHECK(refused[0].code == ErrorCode::kDatasetMissing);
  CHECK(refused[0].message.find("'" + spec.input.host + "'") != std::string::npos);
  CHECK(refused[0].message.find("'" + zwq::host_name() + "'") != std::string::npos);

  // This host's name, but the memory of another machine of that name (or of a container with a
  // /dev/shm of its own): refused as well, naming both memories.
  spec.input.host = zwq::host_name();
  spec.input.memory = "another-boot/0:1";
  const auto apart = executor.execute(all_slices(spec));
  REQUIRE(apart.size() == 2);
  CHECK(apart[0].code == ErrorCode::kDatasetMissing);
  CHECK(apart[0].message.find("another-boot/0:1") != std::string::npos);
  CHECK(apart[0].message.find(zwq::memory_id()) != std::string::npos);

  spec.input.memory = zwq::memory_id();
  const auto done = executor.execute(all_slices(spec));
  REQUIRE(done.size() == 2);
  CHECK(done[0].code == ErrorCode::kOk);
  CHECK(done[1].partial.hi == 5.0);
}

TEST_CASE("executor reports dataset_too_short when the file was truncated after the job was made",
          "[worker]") {
  ShmFile file("exec-truncated");
  file.write(std::vector<float>(4096, 1.0f));
  JobSpec spec = sum_job(file, DType::kF32, 4096, 1024);
  DatasetCache cache;
  Executor executor(cache);

  SECTION("before the Tasks message arrives") {
    REQUIRE(executor.execute(all_slices(spec)).size() == 4);  // mapped at full size
    file.truncate(2048 * sizeof(float));
    const auto outcomes = executor.execute(all_slices(spec));
    REQUIRE(outcomes.size() == 4);
    CHECK(outcomes[0].code == ErrorCode::kOk);
    CHECK(outcomes[1].code == ErrorCode::kOk);
    CHECK(outcomes[2].code == ErrorCode::kDatasetTooShort);
    CHECK(outcomes[3].code == ErrorCode::kDatasetTooShort);
    CHECK(outcomes[2].message.find(file.uri()) != std::string::npos);
    CHECK(outcomes[2].message.find("8192") != std::string::npos);   // bytes held
    CHECK(outcomes[2].message.find("12288") != std::string::npos);  // bytes needed
  }
  SECTION("while its slices are computed (SIGBUS)") {
    const auto job = executor.prepare(spec);  // holds the full-size mapping
    // Page-aligned: the pages of slices 2 and 3 are gone, and reading them raises SIGBUS.
    // (Bytes past the end within the file's last page read as zeros, without a signal.)
    file.truncate(2048 * sizeof(float));
    CHECK(job.run(1, 1).code == ErrorCode::kOk);
    const SliceOutcome cut = job.run(2, 1);
    CHECK(cut.code == ErrorCode::kDatasetTooShort);
    CHECK(cut.message.find("SIGBUS") != std::string::npos);
    CHECK(job.run(3, 1).code == ErrorCode::kDatasetTooShort);
    // The worker survives and goes on with the next job.
    file.write(std::vector<float>(4096, 2.0f));
    const auto outcomes = executor.execute(all_slices(spec));
    CHECK(merged(outcomes, Combiner::kSum).hi == 8192.0);
  }
}

TEST_CASE("executor reports a missing file as dataset_missing", "[worker]") {
  ShmFile file("exec-missing");  // never written
  DatasetCache cache;
  Executor executor(cache);
  const auto outcomes = executor.execute(all_slices(sum_job(file, DType::kF32, 100, 10)));
  REQUIRE(outcomes.size() == 10);
  for (const auto& o : outcomes) CHECK(o.code == ErrorCode::kDatasetMissing);
  CHECK(outcomes[0].message.find(file.name()) != std::string::npos);
}

TEST_CASE("executor reports an unknown kernel as unknown_kernel", "[worker]") {
  ShmFile file("exec-kernel");
  file.write(std::vector<float>(10, 1.0f));
  JobSpec spec = sum_job(file, DType::kF32, 10, 5);
  spec.kernel = "no-such-kernel";
  DatasetCache cache;
  Executor executor(cache);
  const auto job = executor.prepare(spec);
  REQUIRE(job.setup_error());
  const SliceOutcome o = job.run(1, 2);
  CHECK(o.code == ErrorCode::kUnknownKernel);
  CHECK(o.slice == 1);
  CHECK(o.attempt == 2);
  CHECK(o.message.find("no-such-kernel") != std::string::npos);
}

TEST_CASE("executor rejects a job without the dataset its kernel needs", "[worker]") {
  JobSpec spec;
  spec.job_id = "j";
  spec.kernel = "sum";
  spec.count = 10;
  spec.slice_size = 10;
  DatasetCache cache;
  Executor executor(cache);
  CHECK(executor.prepare(spec).run(0, 1).code == ErrorCode::kInvalidArgument);
}

TEST_CASE("executor rejects a byte offset that misaligns the elements", "[worker]") {
  ShmFile file("exec-align");
  file.write(std::vector<double>(10, 1.0));
  JobSpec spec = sum_job(file, DType::kF64, 8, 4);
  spec.input.byte_offset = 4;
  DatasetCache cache;
  Executor executor(cache);
  CHECK(executor.prepare(spec).run(0, 1).code == ErrorCode::kInvalidArgument);
}

// A client speaking the protocol directly is held to what the client library's probe checks.
TEST_CASE("executor refuses to read a file as another dtype than its sidecar records", "[worker]") {
  ShmFile file("exec-dtype");
  file.write(std::vector<float>(64, 1.0f));
  REQUIRE(zwq::write_meta(file.path(), DType::kF32, 64).ok());
  DatasetCache cache;
  Executor executor(cache);
  const auto wrong = executor.prepare(sum_job(file, DType::kF64, 32, 8));
  REQUIRE(wrong.setup_error());
  CHECK(wrong.setup_error()->code == ErrorCode::kDtypeMismatch);
  CHECK(wrong.setup_error()->message.find("holds f32 but the job reads it as f64") !=
        std::string::npos);
  // As recorded, it runs.
  CHECK(
      merged(executor.execute(all_slices(sum_job(file, DType::kF32, 64, 8))), Combiner::kSum).hi ==
      64.0);
}

TEST_CASE("executor refuses a byte offset inside a .npy header, 0 included", "[worker]") {
  ShmFile file("exec-npy");
  const std::string header = zwq::test::npy_header("<f8", 16);
  REQUIRE(header.size() == 128);
  file.write(std::vector<double>(16, 2.0), header);
  DatasetCache cache;
  Executor executor(cache);
  for (std::uint64_t offset : {0u, 8u, 120u}) {
    INFO("byte offset " << offset);
    JobSpec spec = sum_job(file, DType::kF64, 16, 4);
    spec.input.byte_offset = offset;
    const auto job = executor.prepare(spec);
    REQUIRE(job.setup_error());
    CHECK(job.setup_error()->code == ErrorCode::kInvalidArgument);
    CHECK(job.setup_error()->message.find("inside its .npy header of 128 bytes") !=
          std::string::npos);
  }
  JobSpec spec = sum_job(file, DType::kF64, 16, 4);
  spec.input.byte_offset = 128;
  CHECK(merged(executor.execute(all_slices(spec)), Combiner::kSum).hi == 32.0);
}

TEST_CASE("executor reads no further than the elements a .npy shape records", "[worker]") {
  ShmFile file("exec-npy-shape");
  // The shape says 8 elements; the file holds 16 after the header (np.load reads 8).
  file.write(std::vector<double>(16, 1.0), zwq::test::npy_header("<f8", 8));
  DatasetCache cache;
  Executor executor(cache);
  JobSpec spec = sum_job(file, DType::kF64, 16, 4);
  spec.input.byte_offset = 128;
  const auto outcomes = executor.execute(all_slices(spec));
  REQUIRE(outcomes.size() == 4);
  CHECK(outcomes[1].code == ErrorCode::kOk);
  CHECK(outcomes[2].code == ErrorCode::kDatasetTooShort);
  CHECK(outcomes[2].message.find("holds 192 bytes of recorded elements") != std::string::npos);
}

TEST_CASE("executor map kernel writes the output file in place", "[worker]") {
  std::vector<double> x(1000);
  std::iota(x.begin(), x.end(), -500.0);
  ShmFile in("exec-map-in"), out("exec-map-out");
  in.write(x);
  out.write(std::vector<double>(x.size(), -1.0));
  JobSpec spec;
  spec.job_id = "square";
  spec.kernel = "square";
  spec.input = DatasetRef{in.uri(), DType::kF64, 0, x.size()};
  spec.output = DatasetRef{out.uri(), DType::kF64, 0, x.size()};
  spec.first = 100;
  spec.count = 800;
  spec.slice_size = 256;
  DatasetCache cache;
  Executor executor(cache);

  const auto outcomes = executor.execute(all_slices(spec));
  REQUIRE(outcomes.size() == 4);
  for (const auto& o : outcomes) CHECK(o.code == ErrorCode::kOk);

  std::vector<double> y(x.size());
  std::ifstream(out.path(), std::ios::binary)
      .read(reinterpret_cast<char*>(y.data()), static_cast<std::streamsize>(y.size() * 8));
  for (std::size_t i = 0; i < y.size(); ++i) {
    const bool in_job = i >= 100 && i < 900;
    INFO("element " << i);
    CHECK(y[i] == (in_job ? x[i] * x[i] : -1.0));
  }
}

TEST_CASE("executor runs a range kernel without any dataset", "[worker]") {
  JobSpec spec;
  spec.job_id = "pi";
  spec.kernel = "pi";
  spec.count = 1'000'000;
  spec.slice_size = 100'000;
  DatasetCache cache;
  Executor executor(cache);
  const auto* kernel = zwq::KernelRegistry::builtin().find("pi");
  REQUIRE(kernel != nullptr);

  const auto outcomes = executor.execute(all_slices(spec));
  REQUIRE(outcomes.size() == 10);
  const auto result =
      zwq::finalize_result(*kernel, merged(outcomes, kernel->combiner), spec.params, spec.count);
  CHECK(result.value == Approx(3.141592653589793).epsilon(1e-9));
  CHECK(cache.size() == 0);
}

// A slice's run hands the chunks after it to the prefaulter's thread, which populates them
// before any slice reads them; chunks far beyond stay unpopulated, and a mapping without chunk
// tracking (populate off) is left alone.
TEST_CASE("executor populates the chunks after a slice ahead of the slices that read them",
          "[worker]") {
  constexpr std::size_t kChunk = zwq::MappedFile::kPrefaultChunk;
  const std::size_t floats = 16 * kChunk / sizeof(float);  // 32 MiB: 16 chunks
  ShmFile file("exec-ahead");
  file.write(std::vector<float>(floats, 1.0f));
  DatasetCache cache;
  Executor executor(cache);
  const zwq::worker::PreparedJob job =
      executor.prepare(sum_job(file, DType::kF32, floats, kChunk / 4));
  REQUIRE_FALSE(job.setup_error());
  auto mapped = cache.get(file.path(), zwq::MappedFile::Mode::kRead);  // the job's mapping
  REQUIRE(mapped.ok());
  const zwq::MappedFile& m = *mapped.value().file;
  CHECK_FALSE(m.prefaulted(kChunk, kChunk));  // nothing beyond slice 0 yet

  REQUIRE(job.run(0, 1).code == ErrorCode::kOk);  // slice 0: chunk 0
  // The prefaulter's thread populates the next few chunks, on idle CPU time.
  executor.wait_prefaulted();
  CHECK(m.prefaulted(kChunk, 2 * kChunk));
  CHECK_FALSE(m.prefaulted(12 * kChunk, kChunk));  // far past the slice: not asked for

  DatasetCache lazy_cache(64, false);  // mappings without chunk tracking
  Executor lazy(lazy_cache);
  const zwq::worker::PreparedJob lazy_job =
      lazy.prepare(sum_job(file, DType::kF32, floats, kChunk / 4));
  REQUIRE(lazy_job.run(0, 1).code == ErrorCode::kOk);
  auto lazy_mapped = lazy_cache.get(file.path(), zwq::MappedFile::Mode::kRead);
  REQUIRE(lazy_mapped.ok());
  CHECK(lazy_mapped.value().file->prefaulted(kChunk, 2 * kChunk));  // nothing to track: "done"
}

// The compute thread's per-slice path: once a job is prepared and its file populated, computing
// a slice and queueing its outcome for the next Results touch the heap not at all (counted by
// the replaced operator new of tests/support/alloc_count.hpp).
TEST_CASE("worker computes a sum slice and batches its outcome without a heap allocation",
          "[worker]") {
  constexpr std::uint64_t kSlices = 64, kSliceElems = 16384;  // 64 KiB slices, 4 MiB
  ShmFile file("hot-path");
  file.write(std::vector<float>(kSlices * kSliceElems, 0.5f));
  DatasetCache cache;
  Executor executor(cache);
  const zwq::worker::PreparedJob job =
      executor.prepare(sum_job(file, DType::kF32, kSlices * kSliceElems, kSliceElems));
  REQUIRE_FALSE(job.setup_error());
  zwq::worker::OutcomeBatch batch(2 * kSlices);

  // A first pass populates the file (its prefaulter thread allocates, and is not counted) and
  // sizes the batch, as the slices before do in a running job.
  for (std::uint64_t s = 0; s < kSlices; ++s) batch.add(job.run(s, 1));
  executor.wait_prefaulted();
  auto mapped = cache.get(file.path(), zwq::MappedFile::Mode::kRead);
  REQUIRE(mapped.ok());
  REQUIRE(mapped.value().file->prefaulted(0, kSlices * kSliceElems * sizeof(float)));
  REQUIRE(batch.take({}).size() == kSlices);

  double sum = 0;
  const std::uint64_t allocations = allocations_during([&] {
    for (std::uint64_t s = 0; s < kSlices; ++s) {
      zwq::SliceOutcome o = job.run(s, 2);
      sum += o.code == ErrorCode::kOk ? o.partial.hi : -1e300;
      batch.add(std::move(o));
    }
  });
  CHECK(allocations == 0);
  CHECK(sum == 0.5 * static_cast<double>(kSlices * kSliceElems));
  CHECK(batch.size() == kSlices);
}
