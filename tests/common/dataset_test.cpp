#include "zwq/dataset.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "shm_file.hpp"
#include "zwq/mapping.hpp"

using namespace zwq;
using zwq::test::ShmFile;

TEST_CASE("dataset path maps shm names and file paths", "[common][dataset]") {
  CHECK(dataset_path("shm:abc").value() == "/dev/shm/abc");
  CHECK(dataset_path("file:/data/x.f32").value() == "/data/x.f32");
  CHECK(dataset_path("/data/y").value() == "/data/y");
  CHECK(dataset_path("shm:").error().code == ErrorCode::kInvalidArgument);
  CHECK(dataset_path("shm:a/b").error().code == ErrorCode::kInvalidArgument);
  CHECK(dataset_path("shm:..").error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("dataset probe accepts a long enough file", "[common][dataset]") {
  ShmFile f("probe-ok");
  f.write(std::vector<float>(100, 1.0f));
  auto info = probe_dataset(DatasetRef{f.uri(), DType::kF32}, 100);
  REQUIRE(info.ok());
  CHECK(info.value().file_bytes == 400);
  CHECK_FALSE(info.value().recorded_dtype.has_value());
}

TEST_CASE("dataset probe reports a missing file", "[common][dataset]") {
  auto r = probe_dataset(DatasetRef{"shm:zwq-test-does-not-exist", DType::kF32}, 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kDatasetMissing);
  CHECK(r.error().message.find("zwq-test-does-not-exist") != std::string::npos);
}

TEST_CASE("dataset probe reports a file too short, with the numbers", "[common][dataset]") {
  ShmFile f("probe-short");
  f.write(std::vector<double>(10, 1.0));
  auto r = probe_dataset(DatasetRef{f.uri(), DType::kF64, 8}, 10);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kDatasetTooShort);
  CHECK(r.error().message.find("88") != std::string::npos);  // 8 + 10 * 8 bytes needed
}

TEST_CASE("dataset probe catches a dtype that disagrees with the sidecar", "[common][dataset]") {
  ShmFile f("probe-meta");
  f.write(std::vector<double>(4, 1.0));
  REQUIRE(write_meta(f.path(), DType::kF64, 4).ok());
  auto meta = read_meta(f.path());
  REQUIRE(meta.has_value());
  CHECK(meta->first == DType::kF64);
  CHECK(meta->second == 4);
  auto r = probe_dataset(DatasetRef{f.uri(), DType::kF32}, 4);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kDtypeMismatch);
  CHECK(probe_dataset(DatasetRef{f.uri(), DType::kF64}, 4).ok());
}

TEST_CASE("dataset probe reads a .npy header's dtype and length", "[common][dataset]") {
  ShmFile f("probe-npy");
  const std::string header = zwq::test::npy_header("<i4", 3);
  f.write(std::vector<std::int32_t>{1, 2, 3}, header);
  auto info = probe_dataset(DatasetRef{f.uri(), DType::kI32, header.size()}, 3);
  REQUIRE(info.ok());
  CHECK(info.value().header_bytes == header.size());
  CHECK(info.value().recorded_dtype == DType::kI32);
  auto wrong = probe_dataset(DatasetRef{f.uri(), DType::kF32, header.size()}, 3);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == ErrorCode::kDtypeMismatch);
}

TEST_CASE("mapping shares bytes with the file and unmaps on move", "[common][mapping]") {
  ShmFile f("map");
  f.write(std::vector<std::int64_t>{7, 8, 9});
  auto m = MappedFile::open(f.path(), MappedFile::Mode::kReadWrite);
  REQUIRE(m.ok());
  MappedFile a = std::move(m.value());
  REQUIRE(a.size() == 24);
  std::int64_t v = 0;
  std::memcpy(&v, a.data() + 8, 8);
  CHECK(v == 8);
  v = 42;
  std::memcpy(a.mutable_data() + 16, &v, 8);
  auto again = MappedFile::open(f.path(), MappedFile::Mode::kRead);
  REQUIRE(again.ok());
  std::memcpy(&v, again.value().data() + 16, 8);
  CHECK(v == 42);
  CHECK(MappedFile::open("/dev/shm/zwq-test-nothing-here", MappedFile::Mode::kRead).error().code ==
        ErrorCode::kDatasetMissing);
}

namespace {

// Whether the page holding `addr` is in this process's page tables (/proc/self/pagemap bit 63).
bool page_present(const void* addr) {
  const long page = ::sysconf(_SC_PAGESIZE);
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  std::uint64_t entry = 0;
  const auto index = reinterpret_cast<std::uintptr_t>(addr) / static_cast<std::uintptr_t>(page);
  const ssize_t n = ::pread(fd, &entry, sizeof entry, static_cast<off_t>(index * sizeof entry));
  ::close(fd);
  REQUIRE(n == static_cast<ssize_t>(sizeof entry));
  return (entry >> 63) & 1;
}

}  // namespace

TEST_CASE(
    "mapping prefault populates only the 2 MiB chunks asked for, and only in on-first-use "
    "mode",
    "[common][mapping]") {
  constexpr std::size_t kChunk = MappedFile::kPrefaultChunk;
  ShmFile f("prefault");
  f.write(std::vector<std::uint8_t>(4 * kChunk + 100, 1));
  auto lazy = MappedFile::open(f.path(), MappedFile::Mode::kRead, MappedFile::Populate::kOnFault);
  auto chunked =
      MappedFile::open(f.path(), MappedFile::Mode::kRead, MappedFile::Populate::kOnFirstUse);
  REQUIRE(lazy.ok());
  REQUIRE(chunked.ok());
  const std::byte* base = chunked.value().data();
  CHECK_FALSE(page_present(base + kChunk + kChunk / 2));
  chunked.value().prefault(kChunk + 100, 10);  // inside chunk 1
  CHECK(page_present(base + kChunk));
  CHECK(page_present(base + 2 * kChunk - 1));
  CHECK_FALSE(page_present(base + 2 * kChunk + kChunk / 2));  // chunk 2: not asked for
  chunked.value().prefault(4 * kChunk, 100);                  // the short last chunk
  CHECK(page_present(base + 4 * kChunk + 99));
  chunked.value().prefault(5 * kChunk, 100);  // beyond the end: nothing, no crash

  lazy.value().prefault(0, 4 * kChunk);  // not its mode: nothing happens
  CHECK_FALSE(page_present(lazy.value().data() + kChunk / 2));
}

TEST_CASE(
    "dataset probe takes a .npy's length from its shape, refuses a file cut short of its header, "
    "its shape or its sidecar, and an offset inside the header",
    "[common][dataset]") {
  ShmFile f("probe-npy-shape");
  const std::string header = zwq::test::npy_header("<f8", 2);
  f.write(std::vector<double>{1, 2, 3}, header);  // one element more than the shape
  auto info = inspect_dataset(f.uri());
  REQUIRE(info.ok());
  CHECK(info.value().recorded_count == 2u);
  CHECK(info.value().data_end() == header.size() + 16);
  CHECK(probe_dataset(DatasetRef{f.uri(), DType::kF64}, 2).ok());  // offset 0: after the header
  auto past = probe_dataset(DatasetRef{f.uri(), DType::kF64}, 3);
  REQUIRE_FALSE(past.ok());
  CHECK(past.error().code == ErrorCode::kDatasetTooShort);
  auto inside = probe_dataset(DatasetRef{f.uri(), DType::kF64, 8}, 1);
  REQUIRE_FALSE(inside.ok());
  CHECK(inside.error().message.find("lies inside its .npy header") != std::string::npos);

  f.write(std::vector<double>{1}, header);  // one element fewer than the shape
  auto cut = inspect_dataset(f.uri());
  REQUIRE_FALSE(cut.ok());
  CHECK(cut.error().code == ErrorCode::kDatasetTooShort);
  CHECK(cut.error().message.find("its .npy header records 2 elements of f64") != std::string::npos);

  f.write(std::vector<double>{}, header.substr(0, 30));  // the header itself cut short
  auto torn = inspect_dataset(f.uri());
  REQUIRE_FALSE(torn.ok());
  CHECK(torn.error().code == ErrorCode::kInvalidArgument);
  CHECK(torn.error().message.find("header is cut short") != std::string::npos);

  ShmFile g("probe-sidecar-cut");
  g.write(std::vector<float>{1, 2, 3});
  REQUIRE(write_meta(g.path(), DType::kF32, 4).ok());
  auto short_of_meta = inspect_dataset(g.uri());
  REQUIRE_FALSE(short_of_meta.ok());
  CHECK(short_of_meta.error().message.find("its .zwq-meta sidecar records 4 elements") !=
        std::string::npos);
  REQUIRE(write_meta(g.path(), DType::kF32, 2).ok());  // left from an array of 2 elements
  auto stale = inspect_dataset(g.uri());
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.error().message.find("is the sidecar stale?") != std::string::npos);
}

TEST_CASE(
    "dataset probe refuses a .npy whose shape no file could hold and a Fortran-ordered one of "
    "two dimensions",
    "[common][dataset]") {
  ShmFile f("probe-npy-odd");
  // 2^61 + 1 doubles: the byte count would wrap to a few bytes.
  f.write(std::vector<double>{1}, zwq::test::npy_header("<f8", 2305843009213693953ull));
  auto huge = inspect_dataset(f.uri());
  REQUIRE_FALSE(huge.ok());
  CHECK(huge.error().message.find("more than any file holds") != std::string::npos);

  std::string fortran = zwq::test::npy_header("<f8", 4);
  const std::string c_order = "False, 'shape': (4,)";
  REQUIRE(fortran.find(c_order) != std::string::npos);
  fortran.replace(fortran.find(c_order), c_order.size(), "True, 'shape': (2, 2)");
  fortran.erase(fortran.rfind(' '), 1);  // one space less of padding: the length stays
  f.write(std::vector<double>{1, 2, 3, 4}, fortran);
  auto refused = inspect_dataset(f.uri());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("Fortran-ordered array of 2 dimensions") != std::string::npos);
  // C-ordered in two dimensions: its elements in file order.
  std::string c2 = zwq::test::npy_header("<f8", 4);
  c2.replace(c2.find("(4,)"), 4, "(2, 2)");
  c2.erase(c2.rfind(' '), 2);
  f.write(std::vector<double>{1, 2, 3, 4}, c2);
  auto matrix = inspect_dataset(f.uri());
  REQUIRE(matrix.ok());
  CHECK(matrix.value().recorded_count == 4u);
}
