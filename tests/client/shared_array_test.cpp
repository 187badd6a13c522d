#include "zwq/shared_array.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "shm_file.hpp"

namespace {

std::string unique_name(const std::string& stem) {
  static std::atomic<int> counter{0};
  return "zwq-test-sa-" + stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string shm_path(const std::string& name) {
  return "/dev/shm/" + name;
}

}  // namespace

TEST_CASE("SharedArray create maps a zeroed file with a sidecar", "[client]") {
  const std::string name = unique_name("create");
  auto a = zwq::SharedArray<float>::create(name, 1000);
  REQUIRE(a.ok());
  CHECK(a.value().size() == 1000);
  CHECK(a.value()[0] == 0.0f);
  CHECK(a.value()[999] == 0.0f);
  CHECK(exists(shm_path(name)));
  auto meta = zwq::read_meta(shm_path(name));
  REQUIRE(meta);
  CHECK(meta->first == zwq::DType::kF32);
  CHECK(meta->second == 1000);
  const zwq::DatasetRef ref = a.value().ref();
  CHECK(ref.uri == "shm:" + name);
  CHECK(ref.dtype == zwq::DType::kF32);
  CHECK(ref.byte_offset == 0);
  CHECK(ref.length == 1000);
}

TEST_CASE("SharedArray destruction removes the file and its sidecar", "[client]") {
  const std::string name = unique_name("raii");
  {
    auto a = zwq::SharedArray<double>::create(name, 16);
    REQUIRE(a.ok());
    REQUIRE(exists(shm_path(name)));
    REQUIRE(exists(zwq::meta_path(shm_path(name))));
  }
  CHECK_FALSE(exists(shm_path(name)));
  CHECK_FALSE(exists(zwq::meta_path(shm_path(name))));
}

TEST_CASE("SharedArray moved from does not remove the file twice", "[client]") {
  const std::string name = unique_name("move");
  auto a = zwq::SharedArray<std::int32_t>::create(name, 4);
  REQUIRE(a.ok());
  zwq::SharedArray<std::int32_t> b = std::move(a).value();
  b[3] = 7;
  {
    zwq::SharedArray<std::int32_t> c = std::move(b);
    CHECK(c[3] == 7);
    CHECK(exists(shm_path(name)));
  }
  CHECK_FALSE(exists(shm_path(name)));
}

TEST_CASE("SharedArray release keeps the file after destruction", "[client]") {
  const std::string name = unique_name("release");
  {
    auto a = zwq::SharedArray<std::uint8_t>::create(name, 8);
    REQUIRE(a.ok());
    a.value().release();
  }
  CHECK(exists(shm_path(name)));
  CHECK(zwq::ShmSegment::remove(name).ok());
  CHECK_FALSE(exists(shm_path(name)));
  CHECK_FALSE(exists(zwq::meta_path(shm_path(name))));
}

TEST_CASE("SharedArray open sees the data and does not remove the file", "[client]") {
  const std::string name = unique_name("open");
  auto a = zwq::SharedArray<std::int64_t>::create(name, 100);
  REQUIRE(a.ok());
  std::iota(a.value().begin(), a.value().end(), 0);
  {
    auto b = zwq::SharedArray<std::int64_t>::open(name);
    REQUIRE(b.ok());
    CHECK(b.value().size() == 100);
    CHECK(b.value()[42] == 42);
    b.value()[1] = -1;  // the same shared pages
  }
  CHECK(exists(shm_path(name)));
  CHECK(a.value()[1] == -1);
}

TEST_CASE("SharedArray open of a wrong dtype fails with dtype_mismatch", "[client]") {
  const std::string name = unique_name("dtype");
  auto a = zwq::SharedArray<float>::create(name, 10);
  REQUIRE(a.ok());
  auto b = zwq::SharedArray<double>::open(name);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().code == zwq::ErrorCode::kDtypeMismatch);
  CHECK_THAT(b.error().message, Catch::Contains("f32"));
}

TEST_CASE("SharedArray open of a missing array fails with dataset_missing", "[client]") {
  auto b = zwq::SharedArray<float>::open(unique_name("missing"));
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().code == zwq::ErrorCode::kDatasetMissing);
}

TEST_CASE("SharedArray create of an existing name fails and leaves it alone", "[client]") {
  const std::string name = unique_name("exists");
  auto a = zwq::SharedArray<float>::create(name, 10);
  REQUIRE(a.ok());
  a.value()[0] = 5.0f;
  auto b = zwq::SharedArray<float>::create(name, 20);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().code == zwq::ErrorCode::kInvalidArgument);
  CHECK_THAT(b.error().message, Catch::Contains("exists"));
  CHECK(exists(shm_path(name)));
  CHECK(a.value()[0] == 5.0f);
}

TEST_CASE("SharedArray create rejects a name with a slash", "[client]") {
  auto a = zwq::SharedArray<float>::create("a/b", 10);
  REQUIRE_FALSE(a.ok());
  CHECK(a.error().code == zwq::ErrorCode::kInvalidArgument);
}

TEST_CASE("SharedArray of zero elements is valid", "[client]") {
  const std::string name = unique_name("empty");
  auto a = zwq::SharedArray<float>::create(name, 0);
  REQUIRE(a.ok());
  CHECK(a.value().size() == 0);
  CHECK(a.value().span().empty());
}

TEST_CASE("ShmSegment remove of a missing array fails with dataset_missing", "[client]") {
  zwq::Status s = zwq::ShmSegment::remove(unique_name("gone"));
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == zwq::ErrorCode::kDatasetMissing);
}

TEST_CASE("ShmSegment open without a sidecar needs a dtype", "[client]") {
  const std::string name = unique_name("nometa");
  {
    auto seg = zwq::ShmSegment::create(name, zwq::DType::kF64, 4);
    REQUIRE(seg.ok());
    seg.value().release();
  }
  ::unlink(zwq::meta_path(shm_path(name)).c_str());
  auto untyped = zwq::ShmSegment::open(name);
  REQUIRE_FALSE(untyped.ok());
  CHECK(untyped.error().code == zwq::ErrorCode::kInvalidArgument);
  auto typed = zwq::ShmSegment::open(name, zwq::DType::kF32);
  REQUIRE(typed.ok());
  CHECK(typed.value().size() == 8);  // 32 bytes read as f32
  CHECK(zwq::ShmSegment::remove(name).ok());
}

TEST_CASE(
    "ShmSegment open of a .npy takes its dtype and skips its header, and refuses a dtype that "
    "disagrees",
    "[client]") {
  const zwq::test::ShmFile file("sa-npy");
  const std::string header = zwq::test::npy_header("<f8", 3);
  file.write(std::vector<double>{1.5, 2.5, 4.0}, header);
  auto seg = zwq::ShmSegment::open(file.name());
  REQUIRE(seg.ok());
  CHECK(seg.value().dtype() == zwq::DType::kF64);
  CHECK(seg.value().size() == 3);
  CHECK(seg.value().byte_offset() == header.size());
  const auto* x = static_cast<const double*>(seg.value().data());
  CHECK(x[0] == 1.5);
  CHECK(x[2] == 4.0);
  CHECK(seg.value().ref().byte_offset == header.size());
  CHECK(zwq::SharedArray<double>::open(file.name()).ok());

  auto as_f32 = zwq::ShmSegment::open(file.name(), zwq::DType::kF32);
  REQUIRE_FALSE(as_f32.ok());
  CHECK(as_f32.error().code == zwq::ErrorCode::kDtypeMismatch);
  CHECK(as_f32.error().message.find("holds f64, not f32") != std::string::npos);

  file.write(std::vector<std::uint8_t>{1, 2, 3}, zwq::test::npy_header(">f8", 0));
  auto big_endian = zwq::ShmSegment::open(file.name());
  REQUIRE_FALSE(big_endian.ok());
  CHECK(big_endian.error().message.find("a .npy of dtype '>f8'") != std::string::npos);
  // Shorter than its shape: refused, not read as fewer elements.
  file.write(std::vector<std::uint8_t>{1, 2, 3}, zwq::test::npy_header("<f8", 1));
  auto cut = zwq::ShmSegment::open(file.name());
  REQUIRE_FALSE(cut.ok());
  CHECK(cut.error().code == zwq::ErrorCode::kDatasetTooShort);
  CHECK(cut.error().message.find("but its .npy header records 1 elements of f64") !=
        std::string::npos);
  CHECK(cut.error().message.find("was it cut short?") != std::string::npos);
  // Longer than its shape: the shape's count, as np.load reads it.
  file.write(std::vector<double>{1, 2, 3}, zwq::test::npy_header("<f8", 2));
  auto longer = zwq::ShmSegment::open(file.name());
  REQUIRE(longer.ok());
  CHECK(longer.value().size() == 2);
  // The header itself cut short: refused, never taken for raw bytes (and then overwritten).
  file.write(std::vector<std::uint8_t>{}, zwq::test::npy_header("<f8", 2).substr(0, 40));
  auto torn = zwq::ShmSegment::open(file.name(), zwq::DType::kU8);
  REQUIRE_FALSE(torn.ok());
  CHECK(torn.error().code == zwq::ErrorCode::kInvalidArgument);
  CHECK(torn.error().message.find("header is cut short") != std::string::npos);
}

TEST_CASE("ShmSegment open refuses a file shorter or longer than its sidecar records", "[client]") {
  const std::string name = unique_name("cut");
  {
    auto seg = zwq::ShmSegment::create(name, zwq::DType::kF64, 1000);
    REQUIRE(seg.ok());
    seg.value().release();
  }
  REQUIRE(::truncate(shm_path(name).c_str(), 4000) == 0);
  auto cut = zwq::ShmSegment::open(name);
  REQUIRE_FALSE(cut.ok());
  CHECK(cut.error().code == zwq::ErrorCode::kDatasetTooShort);
  CHECK(cut.error().message.find("holds 4000 bytes, but its .zwq-meta sidecar records 1000") !=
        std::string::npos);
  // Longer than its sidecar records: a sidecar left from an earlier array of that name.
  REQUIRE(::truncate(shm_path(name).c_str(), 16000) == 0);
  auto stale = zwq::ShmSegment::open(name);
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.error().message.find("is the sidecar stale?") != std::string::npos);
  CHECK(zwq::ShmSegment::remove(name).ok());
}
