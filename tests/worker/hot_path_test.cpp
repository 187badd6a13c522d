// The compute thread's per-slice path: once a job is prepared and its file populated, computing
// a slice and queueing its outcome for the next Results touch the heap not at all (counted by
// the replaced operator new of tests/support/alloc_count.hpp).
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "alloc_count.hpp"
#include "dataset_cache.hpp"
#include "executor.hpp"
#include "outcome_batch.hpp"
#include "shm_file.hpp"

using zwq::DatasetRef;
using zwq::DType;
using zwq::ErrorCode;
using zwq::JobSpec;
using zwq::test::allocations_during;
using zwq::test::ShmFile;

TEST_CASE("worker computes a sum slice and batches its outcome without a heap allocation",
          "[worker]") {
  constexpr std::uint64_t kSlices = 64, kSliceElems = 16384;  // 64 KiB slices, 4 MiB
  ShmFile file("hot-path");
  file.write(std::vector<float>(kSlices * kSliceElems, 0.5f));
  JobSpec spec;
  spec.job_id = "hot";
  spec.kernel = "sum";
  spec.input = DatasetRef{file.uri(), DType::kF32, 0, kSlices * kSliceElems};
  spec.count = kSlices * kSliceElems;
  spec.slice_size = kSliceElems;
  zwq::worker::DatasetCache cache;
  zwq::worker::Executor executor(cache);
  const zwq::worker::PreparedJob job = executor.prepare(spec);
  REQUIRE_FALSE(job.setup_error());
  zwq::worker::OutcomeBatch batch(2 * kSlices);

  // A first pass populates the file (its prefaulter thread allocates, and is not counted) and
  // sizes the batch, as the slices before do in a running job.
  for (std::uint64_t s = 0; s < kSlices; ++s) batch.add(job.run(s, 1));
  executor.wait_prefaulted();
  auto mapped = cache.get(file.path(), zwq::MappedFile::Mode::kRead);
  REQUIRE(mapped.ok());
  REQUIRE(mapped.value()->prefaulted(0, kSlices * kSliceElems * sizeof(float)));
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
