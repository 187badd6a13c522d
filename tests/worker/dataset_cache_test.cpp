// DatasetCache: one mapping per file, reused, renewed when the file changes.
#include "dataset_cache.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "shm_file.hpp"

using zwq::ErrorCode;
using zwq::MappedFile;
using zwq::test::ShmFile;
using zwq::worker::DatasetCache;

TEST_CASE("dataset cache maps a file once and reuses the mapping", "[worker]") {
  ShmFile file("cache-reuse");
  file.write(std::vector<float>(1000, 1.5f));
  DatasetCache cache(8, false);

  auto first = cache.get(file.path(), MappedFile::Mode::kRead);
  REQUIRE(first.ok());
  auto second = cache.get(file.path(), MappedFile::Mode::kRead);
  REQUIRE(second.ok());
  CHECK(second.value().file == first.value().file);
  CHECK(second.value().file->data() == first.value().file->data());
  CHECK(first.value().file->size() == 4000);
  CHECK(cache.maps_made() == 1);
  CHECK(cache.size() == 1);
}

TEST_CASE("dataset cache maps read and read-write use separately", "[worker]") {
  ShmFile file("cache-modes");
  file.write(std::vector<double>(10, 2.0));
  DatasetCache cache;
  auto ro = cache.get(file.path(), MappedFile::Mode::kRead);
  auto rw = cache.get(file.path(), MappedFile::Mode::kReadWrite);
  REQUIRE(ro.ok());
  REQUIRE(rw.ok());
  CHECK(ro.value().file != rw.value().file);
  CHECK(cache.size() == 2);
}

TEST_CASE("dataset cache notices a resized file", "[worker]") {
  ShmFile file("cache-resize");
  file.write(std::vector<float>(100, 1.0f));
  DatasetCache cache;
  auto before = cache.get(file.path(), MappedFile::Mode::kRead);
  REQUIRE(before.ok());
  CHECK(before.value().file->size() == 400);

  file.write(std::vector<float>(300, 1.0f));
  auto grown = cache.get(file.path(), MappedFile::Mode::kRead);
  REQUIRE(grown.ok());
  CHECK(grown.value().file->size() == 1200);
  CHECK(cache.maps_made() == 2);

  file.truncate(40);
  auto shrunk = cache.get(file.path(), MappedFile::Mode::kRead);
  REQUIRE(shrunk.ok());
  CHECK(shrunk.value().file->size() == 40);
  CHECK(cache.maps_made() == 3);
  CHECK(cache.size() == 1);
  // The old mapping stays valid for whoever still holds it.
  CHECK(before.value().file->size() == 400);
}

TEST_CASE("dataset cache notices a file replaced by one of the same size", "[worker]") {
  ShmFile file("cache-replace");
  file.write(std::vector<float>(100, 1.0f));
  DatasetCache cache;
  auto before = cache.get(file.path(), MappedFile::Mode::kRead);
  REQUIRE(before.ok());
  // Keep the old inode alive (through the mapping) so the new file cannot reuse its number.
  std::remove(file.path().c_str());
  file.write(std::vector<float>(100, 2.0f));
  auto after = cache.get(file.path(), MappedFile::Mode::kRead);
  REQUIRE(after.ok());
  CHECK(after.value().file != before.value().file);
  CHECK(after.value().file->inode() != before.value().file->inode());
  CHECK(reinterpret_cast<const float*>(after.value().file->data())[0] == 2.0f);
}

TEST_CASE("dataset cache reads a file's record again when it is rewritten in place", "[worker]") {
  ShmFile file("cache-record");
  // 128 + 128 bytes either way: np.save over the file keeps its size and inode.
  file.write(std::vector<double>(16, 1.0), zwq::test::npy_header("<f8", 16));
  DatasetCache cache;
  auto before = cache.get(file.path(), MappedFile::Mode::kRead);
  REQUIRE(before.ok());
  CHECK(before.value().record->recorded_dtype == zwq::DType::kF64);
  const auto inode = before.value().file->inode();

  const auto written = std::filesystem::last_write_time(file.path());
  // New data under the same header (as a map kernel writes through its mapping): the record is
  // not read again.
  file.write(std::vector<double>(16, 2.0), zwq::test::npy_header("<f8", 16));
  std::filesystem::last_write_time(file.path(), written + std::chrono::seconds(1));
  REQUIRE(cache.get(file.path(), MappedFile::Mode::kRead).ok());
  CHECK(cache.records_read() == 1);

  file.write(std::vector<float>(32, 1.0f), zwq::test::npy_header("<f4", 32));
  std::filesystem::last_write_time(file.path(), written + std::chrono::seconds(2));
  auto after = cache.get(file.path(), MappedFile::Mode::kRead);
  REQUIRE(after.ok());
  REQUIRE(after.value().file->inode() == inode);
  CHECK(after.value().record->recorded_dtype == zwq::DType::kF32);
  CHECK(after.value().record->recorded_count == 32u);
  CHECK(cache.maps_made() == 1);  // the mapping itself is still good
  CHECK(cache.records_read() == 2);
}

TEST_CASE("dataset cache reports a missing file as dataset_missing", "[worker]") {
  ShmFile file("cache-missing");
  DatasetCache cache;
  auto got = cache.get(file.path(), MappedFile::Mode::kRead);
  REQUIRE_FALSE(got.ok());
  CHECK(got.error().code == ErrorCode::kDatasetMissing);
  CHECK(got.error().message.find(file.path()) != std::string::npos);
}

TEST_CASE("dataset cache forgets a file that disappeared", "[worker]") {
  ShmFile file("cache-vanish");
  file.write(std::vector<float>(10, 1.0f));
  DatasetCache cache;
  REQUIRE(cache.get(file.path(), MappedFile::Mode::kRead).ok());
  std::remove(file.path().c_str());
  auto got = cache.get(file.path(), MappedFile::Mode::kRead);
  REQUIRE_FALSE(got.ok());
  CHECK(got.error().code == ErrorCode::kDatasetMissing);
  CHECK(cache.size() == 0);
}

TEST_CASE("dataset cache unmaps the least recently used beyond its limit", "[worker]") {
  ShmFile a("cache-lru-a"), b("cache-lru-b"), c("cache-lru-c");
  for (const ShmFile* f : {&a, &b, &c}) f->write(std::vector<float>(10, 1.0f));
  DatasetCache cache(2, false);
  REQUIRE(cache.get(a.path(), MappedFile::Mode::kRead).ok());
  REQUIRE(cache.get(b.path(), MappedFile::Mode::kRead).ok());
  REQUIRE(cache.get(a.path(), MappedFile::Mode::kRead).ok());  // a is now the most recent
  REQUIRE(cache.get(c.path(), MappedFile::Mode::kRead).ok());  // evicts b
  CHECK(cache.size() == 2);
  CHECK(cache.maps_made() == 3);
  REQUIRE(cache.get(a.path(), MappedFile::Mode::kRead).ok());  // still cached
  CHECK(cache.maps_made() == 3);
  REQUIRE(cache.get(b.path(), MappedFile::Mode::kRead).ok());  // mapped again
  CHECK(cache.maps_made() == 4);
}
